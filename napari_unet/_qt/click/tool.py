"""The click tool of one viewer: clicks on the canvas become object masks in a Labels layer.

A click resolves to pixel coordinates on the main thread (in napari's 3D view: the
first bright object along the clicked ray), joins the *current object* (its clicks, its
label) and asks for a network pass. In a volume (a stack whose first axis is not time)
the object is 3D: the pass answers the clicked plane and carries the answer through the
planes (:mod:`napari_unet.clicks.volume`), and all its planes change in one undo step. Passes run one at a time in a
worker; clicks that arrive meanwhile are added to their object, whose next pass uses
all of them (the stale intermediate answer is skipped, no click is dropped), and
other objects wait in a queue. Results are written on the main thread with
``data_setitem``: one undo step per answered pass, never over another object's pixels
unless ``preserve_labels`` is off. The current object's clicks are shown as markers
(:mod:`.markers`) until it is finished.
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
from napari_unet._qt.click.markers import ClickMarkers
from napari_unet._qt.click.objects import ClickedObject, Prepare, current_masks, edited, existing, near, plane_of
from napari_unet._qt.jobs import start_job
from napari_unet._qt.layers import (
    commit_memory,
    displayed_plane,
    find_masks,
    layer_spacing,
    masks_name,
    model_input,
    spatial_transform,
    stack_kind,
)
from napari_unet._qt.threads import torch_threads
from napari_unet.clicks.edits import object_change
from napari_unet.clicks.segmenter import ClickSegmenter, farthest_point
from napari_unet.clicks.types import Click, ObjectMask
from napari_unet.clicks.volume import VolumeSegmenter, bright_voxel, foreground_threshold
from napari_unet.devices import resolve_device
from napari_unet.model.files import image_channels
from napari_unet.model.onnx_runtime import export_in_background

TOGGLE_KEY = "k"  # switches click mode on and off (free in napari's default keymap)
DRAG_PX = 4  # a press that moves more canvas pixels than this is a pan, not a click
HOVER_MS = 30  # the cursor at rest this long: prepare the first click's window under it
# a click's passes are small (64-128² windows): on one thread they take the same time whether or not
# another job holds a core; on two, OpenMP's threads wait on each other (a 64² pass: 14 ms on one
# thread, 120-800 ms on two, on the shared 2-core machine while other jobs ran)
CLICK_THREADS = 1


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
        self.through_planes = True  # in a volume, a click makes and changes a 3D object
        self.markers = ClickMarkers(viewer)
        self._bright: dict = {}  # (image id, data id) -> the volume's foreground threshold (3D view)
        self.current: ClickedObject | None = None
        self._queue: deque[ClickedObject | Prepare] = deque()
        self._running: ClickedObject | Prepare | None = None
        self._segmenters: dict = {}  # (layer id, data id, plane, model id, device) -> ClickSegmenter
        self._hover = QTimer()  # restarted by every mouse move; fires once the cursor rests
        self._hover.setSingleShot(True)
        self._hover.setInterval(HOVER_MS)
        self._hover.timeout.connect(self._prepare_hovered)
        self._hovered = None  # the cursor's last world position
        self._committed: set[int] = set()  # ids of the masks arrays given their memory (commit_memory)
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
        """Finish the current object: the next click starts a new one (its markers go)."""
        self.current = None
        self.markers.show(None)

    def _on_mouse(self, viewer, event):
        """Drag callback: a press and release without moving is a click; a drag pans (or turns the 3D view)."""
        if event.button not in (1, 2):
            return
        negative = event.button == 2 or "Shift" in event.modifiers
        position, start = tuple(event.position), np.asarray(event.pos, dtype=float)
        ray = (tuple(event.view_direction), list(event.dims_displayed)) if event.view_direction is not None else None
        yield
        while event.type == "mouse_move":
            yield
        if np.hypot(*(np.asarray(event.pos, dtype=float) - start)) <= DRAG_PX:
            self.click(position, negative, ray)

    def _on_hover(self, viewer, event) -> None:
        """Mouse-move callback: remember where the cursor is, and wait for it to rest."""
        self._hovered = tuple(event.position)
        self._hover.start()

    def _prepare_hovered(self) -> None:
        """The cursor rests: prepare the segmentation model's answer to a click there (in a
        volume, through the planes), when nothing else is waiting (a click never queues behind
        more than this one pass, and a volume's carry gives way to it between planes).
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
        volume = self._volume(image, model)
        segmenter = self._segmenters.get(self._key(image, "volume" if volume else plane, model,
                                                   self.session.ensure_model()))
        ready = segmenter is not None and (segmenter.prepared(plane, point) if volume else segmenter.prepared(point))
        if not ready:
            self._queue.append(Prepare(image, plane, point, volume))
            self._pump()

    # -- clicks -------------------------------------------------------------------------
    def _volume(self, image, model) -> bool:
        """Whether clicks on ``image`` make 3D objects: a stack, clicks through planes on, and its
        first axis not time (as told to the Segment widget, or napari's axis label).

        A stack nobody has named is taken as depth, where Segment asks: a click cannot wait for
        an answer, its result shows at once (one object through the planes) and is one undo
        away, and 'clicks through planes' off makes it plane by plane.
        """
        try:
            source = model_input(image, image_channels(model))
        except ValueError:
            return False
        if not (source.is_stack and self.through_planes):
            return False
        return stack_kind(self.viewer, image, source) != "T"

    def _locate(self, image, source, position, ray=None, volume: bool = False):
        """(plane shape, plane index or None, (y, x) sub-pixel, (y, x) pixel) of a world
        position on ``image``, or a message saying why it is not a place to click. In the
        3D view, ``ray`` (view direction, displayed dims) finds the first bright object.
        """
        if self.viewer.dims.ndisplay != 2:
            if ray is None:
                return "Click-to-segment works in the 2D view; switch off 3D display."
            return self._along_ray(image, source, position, ray, volume)
        coords = np.asarray(image.world_to_data(position))
        axes = source.spatial_axes
        shape = tuple(np.shape(source.data)[ax] for ax in axes)
        pixel = tuple(int(np.floor(coords[ax] + 0.5)) for ax in axes)
        if any(not 0 <= p < s for p, s in zip(pixel, shape)):
            return "That click is outside the image."
        plane = pixel[0] if len(axes) == 3 else None
        return shape, plane, (float(coords[axes[-2]]), float(coords[axes[-1]])), pixel[-2:]

    def _along_ray(self, image, source, position, ray, volume: bool):
        """Where a click in the 3D view lands: the middle of the first run of bright voxels
        (above the volume's Otsu threshold) along the clicked ray, as for :meth:`_locate`.
        """
        if not volume:
            return ("In the 3D view a click finds a 3D object along the line of sight, which needs a volume "
                    "(a Z stack, clicks through planes on); switch to the 2D view to click this image.")
        direction, displayed = ray
        start, end = image.get_ray_intersections(position, direction, displayed, world=True)
        if start is None:
            return "That click misses the image."
        axes = source.spatial_axes
        key = (id(image), id(image.data))
        if key not in self._bright:
            self._bright = {key: foreground_threshold(source.data, source.channel_axis)}
        voxel = bright_voxel(source.data, np.asarray(start)[list(axes)], np.asarray(end)[list(axes)],
                             self._bright[key], source.channel_axis)
        if voxel is None:
            return ("Nothing bright along that line of sight: in the 3D view a click takes the first bright "
                    "object under the cursor; click on an object.")
        shape = tuple(np.shape(source.data)[ax] for ax in axes)
        return shape, voxel[0], (float(voxel[1]), float(voxel[2])), voxel[1:]

    def click(self, position, negative: bool = False, ray=None) -> None:
        """Handle a click at ``position`` (world coordinates; in the 3D view ``ray`` is
        napari's view direction and displayed dims); what it does is in the user guide.
        """
        image = self._image_layer()
        if image is None:
            return self._say("Pick an image layer to click on.")
        try:
            model = self.session.ensure_click_model()
            source = model_input(image, image_channels(model))
        except ValueError as exc:  # ModelFileError too
            return self._say(str(exc))
        volume = self._volume(image, model)
        place = self._locate(image, source, position, ray, volume)
        if isinstance(place, str):
            return self._say(place)
        shape, plane, (y, x), (iy, ix) = place
        layer = self._labels(image, source, shape)
        under = int(plane_of(layer, plane)[iy, ix])
        obj = self.current
        if obj is not None and (obj.layer is not layer or obj.image is not image or obj.volume != volume
                                or not (volume or obj.plane == plane) or not obj.clicks):
            obj = None
        if obj is not None and edited(obj):  # brushed since: start from what is there
            obj = existing(image, layer, plane, obj.label, volume) if _holds_label(obj, plane) else None
        if under and (obj is None or under != obj.label):
            obj = existing(image, layer, plane, under, volume)
        elif obj is None or not (negative or under or near(obj, plane, iy, ix)):
            if negative:
                return self._say("Shift-click removes part of an object: click an object first.")
            obj = ClickedObject(image, layer, plane, self._new_label(layer), volume)
        if volume and negative and not any(c.positive for c in obj.clicks_in(plane)):
            inner = _inner_point(obj, plane)  # the plane's own positive click: the object's centre there
            if inner is None:
                return self._say("Shift-click removes part of an object: this plane has none of it.")
            obj.add(inner, plane, shown=False)
        obj.add(Click(y, x, not negative), plane)  # sub-pixel position for the network
        self.current = obj
        if obj is not self._running and obj not in self._queue:
            self._queue.append(obj)
        self._pump()
        self.markers.show(obj, source.spatial_axes)  # drawn when the event loop runs, the pass started
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
        self._watch(layer)
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
        layer = unwrap(layer)
        self._watch(layer)
        return layer

    def _watch(self, layer: Labels) -> None:
        if layer not in self._watched:
            self._watched.add(layer)
            layer.events.paint.connect(self._on_paint)
            layer.events.data.connect(self._on_data)  # new data: scan again
            layer.events.set_data.connect(self._on_set_data)  # undo and redo refresh the layer

    def _on_set_data(self, event) -> None:
        """An undo of the current object's last pass takes its clicks (and markers) back too."""
        obj = self.current
        if obj is None or obj is self._running or obj in self._queue or obj.layer is not unwrap(event.source):
            return
        if edited(obj) and obj.undo_to_layer():
            if not obj.clicks:
                self.current = None
            self.markers.show(self.current)

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
        layer = self._labels(image, source, tuple(np.shape(source.data)[ax] for ax in source.spatial_axes))
        plane = displayed_plane(self.viewer, image, source.spatial_axes) if source.is_stack else None
        volume = self._volume(image, self.session.click_model)
        if volume and id(layer.data) not in self._committed:  # a click writes many planes: no page faults then
            self._committed.add(id(layer.data))
            start_job(self.session, commit_memory, layer.data, desc="masks memory", show_progress=False,
                      on_result=lambda _: None, on_error=lambda _: None)
        self._queue.append(Prepare(image, plane, volume=volume))
        self._pump()

    def _key(self, image, plane, model, seg_model) -> tuple:
        """What a segmenter is made for: the image data, the plane, the models, the device, the voxel size."""
        return id(image), id(image.data), plane, id(model), id(seg_model), self.session.device, tuple(image.scale)

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
        volume = getattr(item, "volume", False)
        if item.plane is not None and not volume:
            source = source.plane(item.plane)
        key = self._key(item.image, "volume" if volume else item.plane, model, seg_model)
        request, point, on_result = None, None, lambda _: None
        if isinstance(item, ClickedObject):
            clicked = {p for p, shown in zip(item.planes, item.shown) if shown}
            request = (item.plane, item.clicks_in(item.plane), current_masks(item), clicked)
            n_clicks = len(item.clicks)
            on_result = lambda result: self._write(item, result, n_clicks)  # noqa: E731
        else:
            point = (item.plane, item.point)
        spacing = layer_spacing(item.image, source.spatial_axes)
        start_job(self.session, self._predict, key, source, (model, seg_model), request, point, spacing, desc="click",
                  show_progress=False, on_result=on_result, on_error=self._failed,
                  on_finished=self._finished)

    def _predict(self, key, source, models, request, point, spacing) -> dict[int | None, ObjectMask] | None:
        """Worker thread: the object's new masks by plane for a request (plane, its clicks, the
        object's masks, the planes clicked); without one, the window of a first click at
        ``point`` (plane, (y, x)) prepared: the image is normalised once per plane (or volume),
        and the segmentation model's zoom measured on it (no point: click mode starts).
        """
        stamps = {"started": time.perf_counter()}
        with torch_threads(CLICK_THREADS):
            segmenter = self._segmenters.get(key)
            volume = key[2] == "volume"
            if segmenter is None:
                shared = dict(channel_axis=source.channel_axis, device=self.session.device,
                              segmentation_model=models[1])
                segmenter = (VolumeSegmenter(source.data, models[0], spacing=spacing, **shared) if volume
                             else ClickSegmenter(source.data, models[0], **shared))
                self._segmenters = {key: segmenter}  # one plane (or volume) at a time: the cache is small
                if resolve_device(self.session.device).type == "cpu":  # later clicks run the networks' graphs
                    for model in filter(None, models):  # in ONNX Runtime, ~1.4-2x faster (exported once, cached)
                        export_in_background(model)
            if request is not None:
                plane, clicks, masks, clicked = request
                if volume:
                    result = segmenter.predict(plane, clicks, masks, clicked)
                else:
                    result = {plane: segmenter.predict(clicks, masks.get(plane))}
                self.stamps = {**stamps, "answered": time.perf_counter()}
                return result
            plane, where = point
            if volume:  # the plane normalised on the volume's scale, the window under the cursor and the
                # planes its object is carried to, given up between planes once a click waits
                if where is None:
                    segmenter.segmenter(plane).measure()
                else:
                    segmenter.prepare(plane, where, cancelled=lambda: self._elsewhere(plane, where))
            elif where is not None:
                segmenter.prepare(where)
            else:  # click mode starts: the segmentation model's zoom on this image, measured once
                segmenter.measure()
            return None

    def _elsewhere(self, plane: int, point: tuple[float, float]) -> bool:
        """Whether something waits that a pass preparing a first click at ``point`` does not serve
        (anything but that very click: the cursor rested there, then pressed).
        """
        return any(not (isinstance(item, ClickedObject) and len(item.clicks) == 1 and item.planes[0] == plane
                        and np.hypot(item.clicks[0].y - point[0], item.clicks[0].x - point[1]) <= 1.0)
                   for item in list(self._queue))

    def _write(self, obj: ClickedObject, result: dict[int | None, ObjectMask], n_clicks: int) -> None:
        """Main thread: put the answer in the layer, every plane it changes in one undo step."""
        if obj.layer not in self.viewer.layers:
            return self._say("The masks layer was removed; the click was dropped.")
        if len(obj.clicks) > n_clicks and obj not in self._queue:
            self._queue.appendleft(obj)  # more clicks came: their pass supersedes this one
            return
        written, where, values, checked = dict(obj.written), [], [], []
        for plane, mask in sorted(result.items(), key=lambda item: -1 if item[0] is None else item[0]):
            change = object_change(plane_of(obj.layer, plane), obj.label, mask, obj.written.get(plane),
                                   self.preserve_labels)
            where.append(_in_plane(change.where, plane))
            values.append(change.values)
            checked.append(_in_plane(change.checked, plane))
            written[plane] = change.written
        where, checked = _joined(where), _joined(checked)
        before = np.array(obj.layer.data[checked], copy=True)
        if where[0].size:
            obj.layer.data_setitem(where, np.concatenate(values))
        # the clicked object counts as checked by the user (fine-tuning), until undone
        self.session.edits.mark(obj.layer, checked, before)
        obj.answered(n_clicks, written)
        self.stamps["written"] = time.perf_counter()
        self.written.emit(obj.label)
        self._say(_summary(obj))

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


def _joined(parts: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    """Several planes' indices as one index of the layer (one ``data_setitem``: one undo step)."""
    return tuple(np.concatenate(axis).astype(np.intp) for axis in zip(*parts))


def _holds_label(obj: ClickedObject, plane) -> bool:
    """Whether the layer still holds the object's label in ``plane`` (in the window last written)."""
    masks = current_masks(obj)
    return masks.get(plane) is not None and bool(masks[plane].mask.any())


def _inner_point(obj: ClickedObject, plane: int) -> Click | None:
    """A positive click at the object's innermost pixel in ``plane``, or None where it has none."""
    mask = current_masks(obj).get(plane)
    point = None if mask is None else farthest_point(mask.mask)
    return None if point is None else Click(point[0] + mask.offset[0], point[1] + mask.offset[1], True)


def _summary(obj: ClickedObject) -> str:
    """The status line after a pass: the object's size (and planes), or why there is nothing."""
    planes = sorted(p for p, m in obj.written.items() if m.mask.any())
    n = sum(int(obj.written[p].mask.sum()) for p in planes)
    if not n:
        return "No object found under the click; click nearer its centre."
    if not obj.volume:
        return f"Object {obj.label}: {n} pixels after {len(obj.clicks)} click(s)."
    return (f"Object {obj.label}: {n} voxels through planes {planes[0]}–{planes[-1]} "
            f"after {len(obj.clicks)} click(s).")
