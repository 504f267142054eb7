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

import time
import weakref
from collections import deque

import numpy as np
from napari.layers import Labels
from napari.utils.notifications import notification_manager, show_error
from psygnal import Signal
from qtpy.QtCore import QTimer

from napari_unet._qt._napari import unwrap
from napari_unet._qt.click.objects import ClickedObject, Prepare, current_mask, edited, has_label, near, plane_of
from napari_unet._qt.jobs import start_job
from napari_unet._qt.layers import displayed_plane, find_masks, masks_name, model_input, spatial_transform
from napari_unet._qt.threads import gui_threads, torch_threads
from napari_unet.clicks.edits import label_window, object_change
from napari_unet.clicks.segmenter import ClickSegmenter, farthest_point
from napari_unet.clicks.types import Click, ObjectMask
from napari_unet.model.files import image_channels

TOGGLE_KEY = "k"  # switches click mode on and off (free in napari's default keymap)
DRAG_PX = 4  # a press that moves more canvas pixels than this is a pan, not a click
HOVER_MS = 30  # the cursor at rest this long: prepare the first click's window under it


class ClickTool:
    """Click mode for one viewer (see the module docstring).

    Parameters
    ----------
    viewer
        The napari viewer.
    session
        Its :class:`~napari_unet._qt.session.Session` (the click network, device,
        closing, workers).
    image_layer
        Returns the image layer to segment (the widget's picker).
    """

    enabled_changed = Signal(bool)
    message = Signal(str)
    written = Signal(int)  # an object's label was written to its layer
    done = Signal()  # a network pass was answered (written or dropped)

    def __init__(self, viewer, session, image_layer):
        self.viewer, self.session, self._picked = viewer, session, image_layer
        self.enabled = False
        self.preserve_labels = True  # never paint over another object's pixels
        self.first_from_model = True  # the segmentation model answers a lone first click
        self.current: ClickedObject | None = None
        self._queue: deque[ClickedObject | Prepare] = deque()
        self._running: ClickedObject | Prepare | None = None
        self._segmenters: dict = {}  # (layer id, data id, plane, model id, device) -> ClickSegmenter
        self._hover = QTimer()  # restarted by every mouse move; fires once the cursor rests
        self._hover.setSingleShot(True)
        self._hover.setInterval(HOVER_MS)
        self._hover.timeout.connect(self._prepare_hovered)
        self._hovered = None  # the cursor's last world position
        self.stamps: dict[str, float] = {}  # perf_counter of the last pass: started, answered, written
        self._largest: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # layer -> its largest label
        self._watched: weakref.WeakSet = weakref.WeakSet()
        viewer.bind_key(TOGGLE_KEY, lambda _v: self.set_enabled(not self.enabled), overwrite=True)

    # -- mode ---------------------------------------------------------------------------
    def set_enabled(self, on: bool) -> None:
        """Switch click mode on or off; on needs an image to click on, or it says so and stays off."""
        if on and self._image_layer() is None:
            self.enabled_changed.emit(False)
            return self._say("Open an image first (File › Open, or File › Open Sample › napari-unet); "
                             "click mode needs an image to click on.")
        if on == self.enabled:
            return
        self.enabled = on
        callbacks = self.viewer.mouse_drag_callbacks
        layers = self.viewer.layers
        if on:
            callbacks.append(self._on_mouse)
            self.viewer.mouse_move_callbacks.append(self._on_hover)
            for layer in [self.viewer, *layers]:
                self._bind_escape(layer)
            layers.events.inserted.connect(self._bind_escape)
            active = layers.selection.active
            if isinstance(active, Labels):
                active.mode = "pan_zoom"  # a paint-mode click would paint as well
            self.prepare()
        else:
            if self._on_mouse in callbacks:
                callbacks.remove(self._on_mouse)
            if self._on_hover in self.viewer.mouse_move_callbacks:
                self.viewer.mouse_move_callbacks.remove(self._on_hover)
            self._hover.stop()
            layers.events.inserted.disconnect(self._bind_escape)
            for layer in [self.viewer, *layers]:
                if isinstance(layer, Labels) or layer is self.viewer:
                    layer.bind_key("Escape", None)
            self.end_object()
        self.enabled_changed.emit(on)

    def close(self) -> None:
        """Switch click mode off and give the toggle key back (the widget is going away)."""
        self.set_enabled(False)
        self.viewer.bind_key(TOGGLE_KEY, None)

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

    def _on_hover(self, viewer, event) -> None:
        """Mouse-move callback: remember where the cursor is, and wait for it to rest."""
        self._hovered = tuple(event.position)
        self._hover.start()

    def _prepare_hovered(self) -> None:
        """The cursor rests: prepare the segmentation model's answer to a click there, when
        nothing else is waiting (a click never queues behind more than this one pass).
        """
        if self.busy or self._hovered is None or not self.first_from_model or self.session.closed:
            return
        image = self._image_layer()
        if image is None:
            return
        try:
            model = self.session.ensure_click_model()
            place = self._locate(image, model_input(image, image_channels(model)), self._hovered)
        except ValueError:  # a model that cannot load, an image it cannot take: a click will say why
            return
        if isinstance(place, str):
            return
        _shape, plane, point, _pixel = place
        segmenter = self._segmenters.get(self._key(image, plane, model, self.session.ensure_model()))
        if segmenter is None or not segmenter.prepared(point):
            self._queue.append(Prepare(image, plane, point))
            self._pump()

    # -- clicks -------------------------------------------------------------------------
    def _locate(self, image, source, position):
        """(plane shape, plane index or None, (y, x) sub-pixel, (y, x) pixel) of a world
        position on ``image``, or a message saying why it is not a place to click.
        """
        if self.viewer.dims.ndisplay != 2:
            return "Click-to-segment works in the 2D view; switch off 3D display."
        coords = np.asarray(image.world_to_data(position))
        axes = source.spatial_axes
        shape = tuple(np.shape(source.data)[ax] for ax in axes)
        pixel = tuple(int(np.floor(coords[ax] + 0.5)) for ax in axes)
        if any(not 0 <= p < s for p, s in zip(pixel, shape)):
            return "That click is outside the image."
        plane = pixel[0] if len(axes) == 3 else None
        return shape, plane, (float(coords[axes[-2]]), float(coords[axes[-1]])), pixel[-2:]

    def click(self, position, negative: bool = False) -> None:
        """Handle a click at ``position`` (world coordinates); what it does is in the user guide."""
        image = self._image_layer()
        if image is None:
            return self._say("Pick an image layer to click on.")
        try:
            model = self.session.ensure_click_model()
            source = model_input(image, image_channels(model))
        except ValueError as exc:  # ModelFileError too
            return self._say(str(exc))
        place = self._locate(image, source, position)
        if isinstance(place, str):
            return self._say(place)
        shape, plane, (y, x), (iy, ix) = place
        layer = self._labels(image, source, shape)
        under = int(plane_of(layer, plane)[iy, ix])
        obj = self.current
        if obj is not None and (obj.layer is not layer or obj.plane != plane or obj.image is not image):
            obj = None
        if obj is not None and edited(obj):  # brushed or undone since: start from what is there
            obj = self._existing(image, layer, plane, obj.label) if has_label(obj) else None
        if under and (obj is None or under != obj.label):
            obj = self._existing(image, layer, plane, under)
        elif obj is None or not (negative or under or near(obj, iy, ix)):
            if negative:
                return self._say("Shift-click removes part of an object: click an object first.")
            obj = ClickedObject(image, layer, plane, self._new_label(layer))
        obj.clicks.append(Click(y, x, not negative))  # sub-pixel position for the network
        self.current = obj
        if obj is not self._running and obj not in self._queue:
            self._queue.append(obj)
        self._pump()
        # after the pass has started: redrawing the label's colour in napari's controls and
        # polygon overlay takes ~15 ms of the UI thread, while the network works
        if layer.selected_label != obj.label:
            layer.selected_label = obj.label

    def _new_label(self, layer: Labels) -> int:
        """A label not in the layer and not taken by an object still waiting to be written."""
        pending = [o.label for o in (self.current, self._running, *self._queue)
                   if isinstance(o, ClickedObject) and o.layer is layer]
        return max(self._largest_label(layer), *pending, 0) + 1

    def _largest_label(self, layer: Labels) -> int:
        """The layer's largest label: scanned once, then followed through its paint events
        (brush, fill, clicks), so that a click on a big layer never reads all of it.
        """
        if layer not in self._watched:
            self._watched.add(layer)
            layer.events.paint.connect(self._on_paint)
            layer.events.data.connect(self._on_data)  # new data: scan again
        if layer not in self._largest:
            self._largest[layer] = int(np.max(layer.data)) if layer.data.size else 0
        return self._largest[layer]

    def _on_paint(self, event) -> None:
        layer = unwrap(event.source)
        if layer in self._largest:
            written = [atom.new_value if hasattr(atom, "slice_key") else atom[2] for atom in event.value]
            self._largest[layer] = max(self._largest[layer], *(int(np.max(v)) for v in written if np.size(v)))

    def _on_data(self, event) -> None:
        self._largest.pop(unwrap(event.source), None)

    def _existing(self, image, layer, plane, label: int) -> ClickedObject:
        """An object for a label already in the layer: an implicit click at its centre."""
        mask = label_window(plane_of(layer, plane), label)
        obj = ClickedObject(image, layer, plane, label, written=mask)
        point = farthest_point(mask.mask)
        if point is not None:
            obj.clicks.append(Click(point[0] + mask.offset[0], point[1] + mask.offset[1], True))
        return obj

    def _image_layer(self):
        """The picked image layer itself, not napari's proxy of it: a plugin's viewer hands out
        a new proxy on every access, and the objects are told apart by their layers.
        """
        layer = self._picked()
        return None if layer is None else unwrap(layer)

    def _labels(self, image, source, shape) -> Labels:
        """The active Labels layer if it fits the image, else '<image> masks' (made if missing)."""
        active = self.viewer.layers.selection.active
        if isinstance(active, Labels) and active.data.shape == shape:
            return unwrap(active)
        layer = find_masks(self.viewer, image, shape)
        if layer is None:
            layer = self.viewer.add_labels(np.zeros(shape, np.int32), name=masks_name(image),
                                           **spatial_transform(image, source.spatial_axes))
        return unwrap(layer)

    # -- network passes ----------------------------------------------------------------
    def prepare(self) -> None:
        """Normalise the picked image (its displayed plane) in the background, so that the
        first click is answered as fast as the others.
        """
        image = self._image_layer()
        if image is None:
            return
        try:
            source = model_input(image, image_channels(self.session.ensure_click_model()))
        except ValueError:
            return  # the first click will say why
        self._labels(image, source, tuple(np.shape(source.data)[ax] for ax in source.spatial_axes))
        plane = displayed_plane(self.viewer, image, source.spatial_axes) if source.is_stack else None
        self._queue.append(Prepare(image, plane))
        self._pump()

    def _key(self, image, plane, model, seg_model) -> tuple:
        """What a :class:`ClickSegmenter` is made for: the image data, the plane, the models, the device."""
        return id(image), id(image.data), plane, id(model), id(seg_model), self.session.device

    def _pump(self) -> None:
        """Start the next waiting pass, if none is running."""
        if self._running is not None or not self._queue or self.session.closed:
            return
        item = self._running = self._queue.popleft()
        try:
            model = self.session.ensure_click_model()
            # the session's segmentation model answers lone first clicks (see ClickSegmenter)
            seg_model = self.session.ensure_model() if self.first_from_model else None
            source = model_input(item.image, image_channels(model))
        except ValueError as exc:
            self._running = None
            return self._say(str(exc))
        if item.plane is not None:
            source = source.plane(item.plane)
        key = self._key(item.image, item.plane, model, seg_model)
        request, point, on_result = None, None, lambda _: None
        if isinstance(item, ClickedObject):
            request, n_clicks = (list(item.clicks), current_mask(item)), len(item.clicks)
            on_result = lambda result: self._write(item, result, n_clicks)  # noqa: E731
        else:
            point = item.point
        start_job(self.session, self._predict, key, source, (model, seg_model), request, point, desc="click",
                  show_progress=False, on_result=on_result, on_error=self._failed,
                  on_finished=self._finished)

    def _predict(self, key, source, models, request, point) -> ObjectMask | None:
        """Worker thread: the mask for a request's clicks and previous mask; without one, the
        window of a first click at ``point`` prepared (if given): the image is normalised once per plane.
        """
        stamps = {"started": time.perf_counter()}
        with torch_threads(gui_threads()):
            segmenter = self._segmenters.get(key)
            if segmenter is None:
                segmenter = ClickSegmenter(source.data, models[0], channel_axis=source.channel_axis,
                                           device=self.session.device, segmentation_model=models[1])
                self._segmenters = {key: segmenter}  # one plane at a time: the cache is small
            if request is not None:
                result = segmenter.predict(*request)
                self.stamps = {**stamps, "answered": time.perf_counter()}
                return result
            if point is not None:
                segmenter.prepare(point)
            return None

    def _write(self, obj: ClickedObject, result: ObjectMask, n_clicks: int) -> None:
        """Main thread: put the answer in the layer as one undo step."""
        if obj.layer not in self.viewer.layers:
            return self._say("The masks layer was removed; the click was dropped.")
        if len(obj.clicks) > n_clicks and obj not in self._queue:
            self._queue.appendleft(obj)  # more clicks came: their pass supersedes this one
            return
        change = object_change(plane_of(obj.layer, obj.plane), obj.label, result, obj.written, self.preserve_labels)
        checked = _in_plane(change.checked, obj.plane)
        before = np.array(obj.layer.data[checked], copy=True)
        if change.where[0].size:
            obj.layer.data_setitem(_in_plane(change.where, obj.plane), change.values)
        # the clicked object counts as checked by the user (fine-tuning), until undone
        self.session.edits.mark(obj.layer, checked, before)
        obj.written = change.written
        self.stamps["written"] = time.perf_counter()
        self.written.emit(obj.label)
        n = int(change.written.mask.sum())
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


def _in_plane(where: tuple[np.ndarray, np.ndarray], plane: int | None) -> tuple[np.ndarray, ...]:
    """(y, x) indices of a plane as indices of the whole layer."""
    return where if plane is None else (np.full(where[0].shape, plane), *where)
