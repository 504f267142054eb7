"""The click tool of one viewer: clicks on the canvas become object masks in a Labels layer.

A click resolves to pixel coordinates on the main thread, joins the *current object*
(its clicks, its label) and asks for a network pass. Passes run one at a time in a
worker; clicks that arrive meanwhile are added to their object, whose next pass uses
all of them (the stale intermediate answer is skipped, no click is dropped), and
other objects wait in a queue. Results are written on the main thread with
``data_setitem``: one undo step per answered pass, never over another object's pixels
unless ``preserve_labels`` is off.
"""

from __future__ import annotations

import weakref
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from napari.layers import Labels
from napari.utils.notifications import notification_manager, show_error
from psygnal import Signal

from ..clicks import ClickSegmenter, ObjectMask, farthest_point, load_click_model
from ..clicksim import Click
from .jobs import start_job, torch_threads
from .layers import find_masks, masks_name, model_channels, model_input, spatial_transform

TOGGLE_KEY = "k"  # switches click mode on and off (free in napari's default keymap)
DRAG_PX = 4  # a press that moves more canvas pixels than this is a pan, not a click
NEAR = 0.5  # a positive click on background within this many object sizes extends the object

_CLICK_MODELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # session -> click model


def click_model_for(session):
    """The session's click network, loading the shipped one on first use (may raise ModelFileError)."""
    model = _CLICK_MODELS.get(session)
    if model is None:
        model = _CLICK_MODELS[session] = load_click_model()
    return model


def set_click_model(session, model) -> None:
    """Use ``model`` for clicks in this session from the next click on (e.g. after fine-tuning)."""
    _CLICK_MODELS[session] = model


@dataclass(eq=False)
class _Object:
    """The object being clicked: where its label lives and the clicks that define it."""

    image: object  # the image layer clicked on
    layer: Labels  # where its mask is written
    plane: int | None  # index along the first spatial axis of a stack
    label: int
    clicks: list[Click] = field(default_factory=list)
    written: ObjectMask | None = None  # the label's pixels as this tool last left them


class ClickTool:
    """Click mode for one viewer (see the module docstring).

    Parameters
    ----------
    viewer
        The napari viewer.
    session
        Its :class:`~napari_unet._qt.session.Session` (device, closing, workers).
    image_layer
        Returns the image layer to segment (the widget's picker).
    """

    enabled_changed = Signal(bool)
    message = Signal(str)
    done = Signal()  # a network pass was answered (written or dropped)

    def __init__(self, viewer, session, image_layer):
        self.viewer, self.session, self._image_layer = viewer, session, image_layer
        self.enabled = False
        self.preserve_labels = True  # never paint over another object's pixels
        self.current: _Object | None = None
        self._queue: deque[_Object] = deque()
        self._running: _Object | None = None
        self._segmenters: dict = {}  # (layer id, data id, plane, model id, device) -> ClickSegmenter
        viewer.bind_key(TOGGLE_KEY, lambda _v: self.set_enabled(not self.enabled), overwrite=True)

    # -- mode ---------------------------------------------------------------------------
    def set_enabled(self, on: bool) -> None:
        if on == self.enabled:
            return
        self.enabled = on
        callbacks = self.viewer.mouse_drag_callbacks
        layers = self.viewer.layers
        if on:
            callbacks.append(self._on_mouse)
            for layer in [self.viewer, *layers]:
                self._bind_escape(layer)
            layers.events.inserted.connect(self._bind_escape)
            active = layers.selection.active
            if isinstance(active, Labels):
                active.mode = "pan_zoom"  # a paint-mode click would paint as well
        else:
            if self._on_mouse in callbacks:
                callbacks.remove(self._on_mouse)
            layers.events.inserted.disconnect(self._bind_escape)
            for layer in [self.viewer, *layers]:
                if isinstance(layer, Labels) or layer is self.viewer:
                    layer.bind_key("Escape", None)
            self.end_object()
        self.enabled_changed.emit(on)

    def _bind_escape(self, layer_or_event) -> None:
        """Escape ends the object; Labels layers bind Escape themselves, so they get it too."""
        target = getattr(layer_or_event, "value", layer_or_event)
        if isinstance(target, Labels) or target is self.viewer:
            target.bind_key("Escape", lambda _: self.end_object(), overwrite=True)

    @property
    def busy(self) -> bool:
        """Whether a network pass is running or waiting."""
        return self._running is not None or bool(self._queue)

    def end_object(self) -> None:
        """Finish the current object: the next click starts a new one."""
        self.current = None

    def _on_mouse(self, viewer, event):
        """Drag callback: a press and release without moving is a click; a drag pans."""
        if event.button not in (1, 2):
            return
        negative = event.button == 2 or "Shift" in event.modifiers
        position, start = tuple(event.position), np.asarray(event.pos, dtype=float)
        yield
        while event.type == "mouse_move":
            yield
        if np.hypot(*(np.asarray(event.pos, dtype=float) - start)) <= DRAG_PX:
            self.click(position, negative)

    # -- clicks -------------------------------------------------------------------------
    def click(self, position, negative: bool = False) -> None:
        """Handle a click at ``position`` (world coordinates); what it does is in the user guide."""
        image = self._image_layer()
        if image is None:
            return self._say("Pick an image layer to click on.")
        try:
            model = click_model_for(self.session)
            source = model_input(image, model_channels(model))
        except ValueError as exc:  # ModelFileError too
            return self._say(str(exc))
        if self.viewer.dims.ndisplay != 2:
            return self._say("Click-to-segment works in the 2D view; switch off 3D display.")
        coords = np.asarray(image.world_to_data(position))
        axes = source.spatial_axes
        shape = tuple(np.shape(source.data)[ax] for ax in axes)
        pixel = tuple(int(np.floor(coords[ax] + 0.5)) for ax in axes)
        if any(not 0 <= p < s for p, s in zip(pixel, shape)):
            return self._say("That click is outside the image.")
        plane = pixel[0] if len(axes) == 3 else None
        y, x = float(coords[axes[-2]]), float(coords[axes[-1]])
        iy, ix = pixel[-2], pixel[-1]
        layer = self._labels(image, source, shape)
        under = int(_plane(layer, plane)[iy, ix])
        obj = self.current
        if obj is not None and (obj.layer is not layer or obj.plane != plane or obj.image is not image):
            obj = None
        if obj is not None and _edited(obj):  # brushed or undone since: start from what is there
            obj = self._existing(image, layer, plane, obj.label) if _has_label(obj) else None
        if under and (obj is None or under != obj.label):
            obj = self._existing(image, layer, plane, under)
        elif obj is None or not (negative or under or _near(obj, iy, ix)):
            if negative:
                return self._say("Shift-click removes part of an object: click an object first.")
            obj = _Object(image, layer, plane, self._new_label(layer))
        obj.clicks.append(Click(y, x, not negative))  # sub-pixel position for the network
        self.current = obj
        layer.selected_label = obj.label
        if obj is not self._running and obj not in self._queue:
            self._queue.append(obj)
        self._pump()

    def _new_label(self, layer: Labels) -> int:
        """A label not in the layer and not taken by an object still waiting to be written."""
        pending = [o.label for o in (self.current, self._running, *self._queue)
                   if o is not None and o.layer is layer]
        return max(int(np.max(layer.data)), *pending, 0) + 1

    def _existing(self, image, layer, plane, label: int) -> _Object:
        """An object for a label already in the layer: an implicit click at its centre."""
        mask = _label_window(_plane(layer, plane), label)
        obj = _Object(image, layer, plane, label, written=mask)
        point = farthest_point(mask.mask)
        if point is not None:
            obj.clicks.append(Click(point[0] + mask.offset[0], point[1] + mask.offset[1], True))
        return obj

    def _labels(self, image, source, shape) -> Labels:
        """The active Labels layer if it fits the image, else '<image> masks' (made if missing)."""
        active = self.viewer.layers.selection.active
        if isinstance(active, Labels) and active.data.shape == shape:
            return active
        layer = find_masks(self.viewer, image, shape)
        if layer is None:
            layer = self.viewer.add_labels(np.zeros(shape, np.int32), name=masks_name(image),
                                           **spatial_transform(image, source.spatial_axes))
            self.viewer.layers.selection.active = image  # keep clicking on the image
        return layer

    # -- network passes ----------------------------------------------------------------
    def _pump(self) -> None:
        """Start the next waiting pass, if none is running."""
        if self._running is not None or not self._queue or self.session.closed:
            return
        obj = self._running = self._queue.popleft()
        pos = [(c.y, c.x) for c in obj.clicks if c.positive]
        neg = [(c.y, c.x) for c in obj.clicks if not c.positive]
        n_clicks = len(obj.clicks)
        previous = _current_mask(obj)
        try:
            model = click_model_for(self.session)
            source = model_input(obj.image, model_channels(model))
        except ValueError as exc:
            self._running = None
            return self._say(str(exc))
        if obj.plane is not None:
            source = source.plane(obj.plane)
        key = (id(obj.image), id(obj.image.data), obj.plane, id(model), self.session.device)
        start_job(
            self.session, self._predict, key, source, model, pos, neg, previous,
            desc="click", show_progress=False,
            on_result=lambda result: self._write(obj, result, n_clicks),
            on_error=self._failed, on_finished=self._finished,
        )

    def _predict(self, key, source, model, pos, neg, previous) -> ObjectMask:
        """Worker thread: the mask for these clicks (the image is normalised once per plane)."""
        from ..devices import gui_threads

        with torch_threads(gui_threads()):
            segmenter = self._segmenters.get(key)
            if segmenter is None:
                segmenter = ClickSegmenter(source.data, model, channel_axis=source.channel_axis,
                                           device=self.session.device)
                self._segmenters = {key: segmenter}  # one plane at a time: the cache is small
            return segmenter.predict(pos, neg, previous)

    def _write(self, obj: _Object, result: ObjectMask, n_clicks: int) -> None:
        """Main thread: put the answer in the layer as one undo step."""
        if obj.layer not in self.viewer.layers:
            return self._say("The masks layer was removed; the click was dropped.")
        if len(obj.clicks) > n_clicks and obj not in self._queue:
            self._queue.appendleft(obj)  # more clicks came: their pass supersedes this one
            return
        plane = _plane(obj.layer, obj.plane)
        region = _union(result, obj.written, plane.shape)
        current = plane[region]
        own = current == obj.label
        new = np.zeros(current.shape, dtype=bool)
        inner = tuple(slice(s.start - r.start, s.stop - r.start) for s, r in zip(result.slices, region))
        new[inner] = result.mask
        if self.preserve_labels:
            new &= (current == 0) | own
        changed = new != own
        where = list(np.nonzero(changed))
        where = [where[0] + region[0].start, where[1] + region[1].start]
        if obj.plane is not None:
            where.insert(0, np.full(where[0].shape, obj.plane))
        if where[0].size:
            values = np.where(new[changed], obj.label, 0).astype(obj.layer.data.dtype)
            obj.layer.data_setitem(tuple(where), values)
        edits = getattr(self.session, "edits", None)
        if edits is not None:  # the clicked object counts as checked by the user (fine-tuning)
            checked = list(np.nonzero(changed | new))
            checked = [checked[0] + region[0].start, checked[1] + region[1].start]
            edits.mark(obj.layer, tuple(checked if obj.plane is None else
                                        [np.full(checked[0].shape, obj.plane), *checked]))
        obj.written = ObjectMask(new, (region[0].start, region[1].start), plane.shape)
        n = int(new.sum())
        self._say(f"Object {obj.label}: {n} pixels after {len(obj.clicks)} click(s)." if n else
                  "No object found under the click; click nearer its centre.")

    def _failed(self, exc: Exception) -> None:
        if isinstance(exc, ValueError):
            show_error(f"napari-unet: click-to-segment failed: {exc}")
        else:
            notification_manager.receive_error(type(exc), exc, exc.__traceback__)

    def _finished(self) -> None:
        self._running = None
        self.done.emit()
        self._pump()

    def _say(self, text: str) -> None:
        self.message.emit(text)


def _plane(layer: Labels, plane: int | None) -> np.ndarray:
    return layer.data[plane] if plane is not None else layer.data


def _current_mask(obj: _Object) -> ObjectMask | None:
    """The object's pixels as the layer holds them now, in the window last written."""
    if obj.written is None:
        return None
    mask = _plane(obj.layer, obj.plane)[obj.written.slices] == obj.label
    return ObjectMask(mask, obj.written.offset, obj.written.shape)


def _edited(obj: _Object) -> bool:
    """Whether the label's pixels changed since this tool wrote them (brush, undo)."""
    current = _current_mask(obj)
    return current is not None and not np.array_equal(current.mask, obj.written.mask)


def _has_label(obj: _Object) -> bool:
    current = _current_mask(obj)
    return current is not None and bool(current.mask.any())


def _near(obj: _Object, y: int, x: int) -> bool:
    """Whether (y, x) is close enough to the object to be a click that extends it."""
    box = obj.written.bbox() if obj.written is not None else None
    if box is None:
        ys, xs = [c.y for c in obj.clicks], [c.x for c in obj.clicks]
        box = (min(ys), min(xs), max(ys) + 1, max(xs) + 1)
    reach = max(8.0, NEAR * max(box[2] - box[0], box[3] - box[1]))
    return box[0] - reach <= y < box[2] + reach and box[1] - reach <= x < box[3] + reach


def _label_window(plane: np.ndarray, label: int) -> ObjectMask:
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

