"""The objects the click tool is working on: where each lives and what it was last written as."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from napari_unet.clicks.types import Click, ObjectMask

if TYPE_CHECKING:
    from napari.layers import Labels

NEAR = 0.5  # a positive click on background within this many object sizes extends the object


@dataclass(frozen=True)
class Prepare:
    """A request to normalise an image plane before the first click, and to segment the
    window a first click at ``point`` would look at (the cursor rests there).
    """

    image: object
    plane: int | None
    point: tuple[float, float] | None = None  # (y, x) in the plane's pixels


@dataclass(eq=False)
class ClickedObject:
    """The object being clicked: where its label lives and the clicks that define it."""

    image: object  # the image layer clicked on
    layer: Labels  # where its mask is written
    plane: int | None  # index along the first spatial axis of a stack
    label: int
    clicks: list[Click] = field(default_factory=list)
    written: ObjectMask | None = None  # the label's pixels as this tool last left them


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
