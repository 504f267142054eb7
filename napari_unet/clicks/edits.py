"""Writing a click's answer into a label plane: which pixels change, and the object's window."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_unet.clicks.types import ObjectMask
from napari_unet.windows import box_of, union_box


@dataclass(frozen=True, eq=False)
class Change:
    """What writing an answer does to a plane: pixels to set, and the object's new pixels."""

    where: tuple[np.ndarray, np.ndarray]  # (y, x) of changed pixels
    values: np.ndarray  # their new values (the object's label or 0)
    checked: tuple[np.ndarray, np.ndarray]  # (y, x) of changed pixels and the object's pixels
    written: ObjectMask  # the object's pixels after the write, in the window written


def object_change(plane: np.ndarray, label: int, result: ObjectMask, written: ObjectMask | None,
                  preserve: bool) -> Change:
    """The pixels to change so that ``label`` covers ``result`` in ``plane``.

    Pixels the label had in ``written`` (the window where it was last written) and
    ``result`` lacks go back to 0; with ``preserve``, pixels of other labels are never taken.
    """
    region = _window_union(result, written, plane.shape)
    current = plane[region]
    own = current == label
    new = np.zeros(current.shape, dtype=bool)
    inner = tuple(slice(s.start - r.start, s.stop - r.start) for s, r in zip(result.slices, region))
    new[inner] = result.mask
    if preserve:
        new &= (current == 0) | own
    changed = new != own
    offset = np.array([region[0].start, region[1].start])[:, None]
    where = tuple(np.array(np.nonzero(changed)) + offset)
    checked = tuple(np.array(np.nonzero(changed | new)) + offset)
    values = np.where(new[changed], label, 0).astype(plane.dtype)
    return Change(where, values, checked, ObjectMask(new, (region[0].start, region[1].start), plane.shape))


def label_window(plane: np.ndarray, label: int) -> ObjectMask:
    """``plane == label`` in a window around the label's pixels."""
    box = box_of(plane == label)
    if box is None:
        return ObjectMask(np.zeros((0, 0), bool), (0, 0), plane.shape)
    y0, x0, y1, x1 = box
    return ObjectMask(plane[y0:y1, x0:x1] == label, (y0, x0), plane.shape)


def _window_union(a: ObjectMask, b: ObjectMask | None, shape) -> tuple[slice, slice]:
    """The smallest window holding both masks' windows, inside ``shape``."""
    box = union_box([m.window for m in (a, b) if m is not None and m.mask.size])
    if box is None:
        return slice(0, 0), slice(0, 0)
    return slice(box[0], min(box[2], shape[0])), slice(box[1], min(box[3], shape[1]))
