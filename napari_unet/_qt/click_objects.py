"""The objects the click tool is working on, and what writing one changes in a plane.

Pure numpy on a Labels layer's arrays: the tool (:mod:`.click`) does the layer writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from napari_unet.clicks import ObjectMask
from napari_unet.clicksim import Click

if TYPE_CHECKING:
    from napari.layers import Labels

NEAR = 0.5  # a positive click on background within this many object sizes extends the object


@dataclass(frozen=True)
class Prepare:
    """A request to normalise an image plane before the first click."""

    image: object
    plane: int | None


@dataclass(eq=False)
class ClickedObject:
    """The object being clicked: where its label lives and the clicks that define it."""

    image: object  # the image layer clicked on
    layer: Labels  # where its mask is written
    plane: int | None  # index along the first spatial axis of a stack
    label: int
    clicks: list[Click] = field(default_factory=list)
    written: ObjectMask | None = None  # the label's pixels as this tool last left them


@dataclass(frozen=True, eq=False)
class Change:
    """What writing an answer does to a plane: pixels to set, and the object's new pixels."""

    where: tuple[np.ndarray, np.ndarray]  # (y, x) of changed pixels
    values: np.ndarray  # their new values (the object's label or 0)
    checked: tuple[np.ndarray, np.ndarray]  # (y, x) of changed pixels and the object's pixels
    written: ObjectMask  # the object's pixels after the write, in the window written


def object_change(plane: np.ndarray, obj: ClickedObject, result: ObjectMask, preserve: bool) -> Change:
    """The pixels to change so that ``obj``'s label covers ``result`` in ``plane``.

    Pixels the label had (in the window last written) and ``result`` lacks go back to 0;
    with ``preserve``, pixels of other labels are never taken.
    """
    region = _union(result, obj.written, plane.shape)
    current = plane[region]
    own = current == obj.label
    new = np.zeros(current.shape, dtype=bool)
    inner = tuple(slice(s.start - r.start, s.stop - r.start) for s, r in zip(result.slices, region))
    new[inner] = result.mask
    if preserve:
        new &= (current == 0) | own
    changed = new != own
    offset = np.array([region[0].start, region[1].start])[:, None]
    where = tuple(np.array(np.nonzero(changed)) + offset)
    checked = tuple(np.array(np.nonzero(changed | new)) + offset)
    values = np.where(new[changed], obj.label, 0).astype(plane.dtype)
    return Change(where, values, checked, ObjectMask(new, (region[0].start, region[1].start), plane.shape))


def plane_of(layer: Labels, plane: int | None) -> np.ndarray:
    return layer.data[plane] if plane is not None else layer.data


def current_mask(obj: ClickedObject) -> ObjectMask | None:
    """The object's pixels as the layer holds them now, in the window last written."""
    if obj.written is None:
        return None
    mask = plane_of(obj.layer, obj.plane)[obj.written.slices] == obj.label
    return ObjectMask(mask, obj.written.offset, obj.written.shape)


def edited(obj: ClickedObject) -> bool:
    """Whether the label's pixels changed since this tool wrote them (brush, undo)."""
    current = current_mask(obj)
    return current is not None and not np.array_equal(current.mask, obj.written.mask)


def has_label(obj: ClickedObject) -> bool:
    current = current_mask(obj)
    return current is not None and bool(current.mask.any())


def near(obj: ClickedObject, y: int, x: int) -> bool:
    """Whether (y, x) is close enough to the object to be a click that extends it."""
    box = obj.written.bbox() if obj.written is not None else None
    if box is None:
        ys, xs = [c.y for c in obj.clicks], [c.x for c in obj.clicks]
        box = (min(ys), min(xs), max(ys) + 1, max(xs) + 1)
    reach = max(8.0, NEAR * max(box[2] - box[0], box[3] - box[1]))
    return box[0] - reach <= y < box[2] + reach and box[1] - reach <= x < box[3] + reach


def label_window(plane: np.ndarray, label: int) -> ObjectMask:
    """``plane == label`` in a window around the label's pixels."""
    ys, xs = np.nonzero(plane == label)
    if ys.size == 0:
        return ObjectMask(np.zeros((0, 0), bool), (0, 0), plane.shape)
    y0, x0, y1, x1 = ys.min(), xs.min(), ys.max() + 1, xs.max() + 1
    return ObjectMask(plane[y0:y1, x0:x1] == label, (int(y0), int(x0)), plane.shape)


def _union(a: ObjectMask, b: ObjectMask | None, shape) -> tuple[slice, slice]:
    """The smallest window holding both masks' windows."""
    boxes = [m for m in (a, b) if m is not None and m.mask.size]
    if not boxes:
        return slice(0, 0), slice(0, 0)
    y0 = min(m.offset[0] for m in boxes)
    x0 = min(m.offset[1] for m in boxes)
    y1 = max(m.offset[0] + m.mask.shape[0] for m in boxes)
    x1 = max(m.offset[1] + m.mask.shape[1] for m in boxes)
    return slice(y0, min(y1, shape[0])), slice(x0, min(x1, shape[1]))

