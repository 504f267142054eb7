"""The objects the click tool is working on: where each lives and what it was last written as.

An object on a 2D image or on one plane of a stack has one plane (``None`` for a 2D
image); a 3D object in a volume (``volume``) has masks in many planes and clicks in any
of them. Either way ``written`` holds, plane by plane, the label's pixels as the tool last
left them, and ``passes`` the states after each answered pass, so that an undo can be
told apart from a brush stroke: the layer holds an earlier pass's state again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from napari_unet.clicks.edits import label_window
from napari_unet.clicks.segmenter import farthest_point
from napari_unet.clicks.types import Click, ObjectMask
from napari_unet.windows import crop, union_box

if TYPE_CHECKING:
    from napari.layers import Labels

NEAR = 0.5  # a positive click on background within this many object sizes extends the object
NEAR_PLANES = 3  # ... and, for a 3D object, within this many planes of its first or last one


@dataclass(frozen=True)
class Prepare:
    """A request to normalise an image plane before the first click, and to segment the
    window a first click at ``point`` would look at (the cursor rests there).
    """

    image: object
    plane: int | None
    point: tuple[float, float] | None = None  # (y, x) in the plane's pixels
    volume: bool = False  # the image is a volume clicked through its planes


@dataclass(eq=False)
class ClickedObject:
    """The object being clicked: where its label lives and the clicks that define it."""

    image: object  # the image layer clicked on
    layer: Labels  # where its mask is written
    plane: int | None  # index along the first spatial axis of a stack: the latest click's plane
    label: int
    volume: bool = False  # a 3D object: clicks in any plane change it through the planes
    clicks: list[Click] = field(default_factory=list)
    planes: list[int | None] = field(default_factory=list)  # the plane of each click
    shown: list[bool] = field(default_factory=list)  # whether each click is the user's (shown as a marker)
    written: dict[int | None, ObjectMask] = field(default_factory=dict)  # plane -> the label's pixels as left
    passes: list[tuple[int, dict]] = field(default_factory=list)  # (clicks answered, written) after each pass

    def add(self, click: Click, plane: int | None, shown: bool = True) -> None:
        self.clicks.append(click)
        self.planes.append(plane)
        self.shown.append(shown)
        self.plane = plane

    def clicks_in(self, plane: int | None) -> list[Click]:
        return [c for c, p in zip(self.clicks, self.planes) if p == plane]

    def answered(self, n_clicks: int, written: dict) -> None:
        """A pass for the first ``n_clicks`` clicks left ``written`` in the layer."""
        self.written = written
        self.passes.append((n_clicks, dict(written)))

    def undo_to_layer(self) -> bool:
        """The layer holds an earlier pass's state (undo): drop the clicks after it. Returns
        whether the object went back (False: it holds what was written, or something else).
        """
        for index in range(len(self.passes) - 2, -2, -1):
            n_clicks, state = self.passes[index] if index >= 0 else (0, {})
            if holds(self.layer, self.label, state, {**self.written, **state}):
                del self.clicks[n_clicks:], self.planes[n_clicks:], self.shown[n_clicks:]
                del self.passes[index + 1:]
                self.written = dict(state)
                return True
        return False


def plane_of(layer: Labels, plane: int | None) -> np.ndarray:
    return layer.data[plane] if plane is not None else layer.data


def holds(layer: Labels, label: int, state: dict, windows: dict) -> bool:
    """Whether ``layer`` holds ``state`` (the label's mask by plane) in the windows of ``windows``."""
    for plane, window in windows.items():
        if not window.mask.size:
            continue
        now = plane_of(layer, plane)[window.slices] == label
        mask = state.get(plane)
        expected = (np.zeros(now.shape, bool) if mask is None or not mask.mask.size else
                    crop(mask.mask, window.offset, now.shape, fill=False, origin=mask.offset))
        if not np.array_equal(now, expected):
            return False
    return True


def current_mask(obj: ClickedObject, plane: int | None) -> ObjectMask | None:
    """The object's pixels in ``plane`` as the layer holds them now, in the window last written."""
    written = obj.written.get(plane)
    if written is None:
        return None
    mask = plane_of(obj.layer, plane)[written.slices] == obj.label
    return ObjectMask(mask, written.offset, written.shape)


def current_masks(obj: ClickedObject) -> dict[int | None, ObjectMask]:
    return {plane: current_mask(obj, plane) for plane in obj.written}


def edited(obj: ClickedObject) -> bool:
    """Whether the label's pixels changed since this tool wrote them (brush, undo)."""
    return not holds(obj.layer, obj.label, obj.written, obj.written)


def has_label(obj: ClickedObject) -> bool:
    return any(mask.mask.any() for mask in current_masks(obj).values())


def existing(image, layer: Labels, plane: int | None, label: int, volume: bool) -> ClickedObject:
    """An object for a label already in the layer: an implicit click at its centre in ``plane``;
    a 3D object takes the label's pixels in the planes next to it, while it is in them.
    """
    obj = ClickedObject(image, layer, plane, label, volume)
    written = {plane: label_window(plane_of(layer, plane), label)}
    if volume:
        for step in (1, -1):
            k = plane + step
            while 0 <= k < layer.data.shape[0]:
                mask = label_window(layer.data[k], label)
                if not mask.mask.size:
                    break
                written[k] = mask
                k += step
    point = farthest_point(written[plane].mask)
    if point is not None:
        offset = written[plane].offset
        obj.add(Click(point[0] + offset[0], point[1] + offset[1], True), plane, shown=False)
    obj.answered(len(obj.clicks), written)
    return obj


def near(obj: ClickedObject, plane: int | None, y: int, x: int) -> bool:
    """Whether (y, x) in ``plane`` is close enough to the object to be a click that extends it."""
    if not obj.volume and plane != obj.plane:
        return False
    boxes = {p: m.bbox() for p, m in obj.written.items()}
    boxes = {p: b for p, b in boxes.items() if b is not None}
    box = union_box(boxes.values())
    if box is None:
        points = [(c.y, c.x) for c in obj.clicks]
        box = union_box(points=points)
    if obj.volume:
        planes = [p for p in boxes] or [p for p in obj.planes if p is not None]
        reach_z = max(NEAR_PLANES, NEAR * (max(planes) - min(planes) + 1))
        if not min(planes) - reach_z <= plane <= max(planes) + reach_z:
            return False
    reach = max(8.0, NEAR * max(box[2] - box[0], box[3] - box[1]))
    return box[0] - reach <= y < box[2] + reach and box[1] - reach <= x < box[3] + reach
