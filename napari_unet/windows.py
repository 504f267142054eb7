"""Window arithmetic: boxes, centres, and cropping a window that may stick out of an array.

A window is given by its top-left ``corner`` (y, x) in an array's last two axes and its
``size`` (an edge, or (height, width)); it may start before 0 or end past the array,
where it is filled. Boxes are (y0, x0, y1, x1) with exclusive ends.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

Box = tuple[float, float, float, float]


def _hw(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if np.isscalar(size) else (int(size[0]), int(size[1]))


def overlap(corner: tuple[int, int], size: int | tuple[int, int], shape: tuple[int, int],
            origin: tuple[int, int] = (0, 0)) -> tuple[tuple[slice, slice], tuple[slice, slice]] | None:
    """Where a window meets an array placed at ``origin``: (slices in the window, slices in
    the array), or None when they do not meet.
    """
    (h, w), (y0, x0), (oy, ox) = _hw(size), corner, origin
    ys, xs = max(y0, oy), max(x0, ox)
    ye, xe = min(y0 + h, oy + shape[0]), min(x0 + w, ox + shape[1])
    if ye <= ys or xe <= xs:
        return None
    return ((slice(ys - y0, ye - y0), slice(xs - x0, xe - x0)),
            (slice(ys - oy, ye - oy), slice(xs - ox, xe - ox)))


def crop(array: np.ndarray, corner: tuple[int, int], size: int | tuple[int, int], fill=0,
         origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """The window at ``corner`` of ``array``'s last two axes, ``fill`` where it sticks out.

    ``origin`` is where ``array[..., 0, 0]`` lies, when the array is itself a window of a
    larger image (a mask pasted into another window).
    """
    h, w = _hw(size)
    out = np.full(array.shape[:-2] + (h, w), fill, dtype=array.dtype)
    met = overlap(corner, (h, w), array.shape[-2:], origin)
    if met is not None:
        out[(..., *met[0])] = array[(..., *met[1])]
    return out


def box_of(mask: np.ndarray, offset: tuple[int, int] = (0, 0)) -> tuple[int, int, int, int] | None:
    """(y0, x0, y1, x1) of ``mask``'s pixels, shifted by ``offset``; None for an empty mask."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    y, x = offset
    return y + int(ys.min()), x + int(xs.min()), y + int(ys.max()) + 1, x + int(xs.max()) + 1


def union_box(boxes: Iterable[Box | None] = (), points: Iterable[tuple[float, float]] = ()) -> Box | None:
    """The smallest box holding ``boxes`` and the pixels at ``points`` (None if there are none)."""
    parts = [b for b in boxes if b is not None] + [(y, x, y + 1, x + 1) for y, x in points]
    if not parts:
        return None
    y0, x0, y1, x1 = zip(*parts)
    return min(y0), min(x0), max(y1), max(x1)


def centre(box: Box) -> tuple[float, float]:
    """The centre of ``box`` in pixel coordinates (the middle pixel of an odd box)."""
    return (box[0] + box[2] - 1) / 2, (box[1] + box[3] - 1) / 2


def corner_inside(point: tuple[int, int], edge: int, shape: tuple[int, int]) -> tuple[int, int]:
    """Corner of an ``edge``² window around ``point``, moved to lie inside ``shape`` where it fits."""
    return tuple(max(0, min(int(p) - edge // 2, int(n) - edge)) for p, n in zip(point, shape))
