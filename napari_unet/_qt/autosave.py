"""Autosave of the Labels layers napari-unet made or the user corrected, and the offer to restore them.

One :class:`Autosaver` per :class:`~napari_unet._qt.session.Session`, so it runs from the
moment a napari-unet widget is first opened in a viewer until the viewer closes. Every
:data:`AUTOSAVE_S` it saves, into :func:`napari_unet.recovery.recovery_dir`, each Labels
layer that changed since its last save and that napari-unet made (``<image> masks``, or
marked with :data:`~napari_unet._qt.layers.OUTPUT`) or that the user painted on. A change
is noticed from the layer's ``data``, ``paint`` and ``set_data`` events (undo and redo
emit only ``set_data``), so a tick with nothing changed costs nothing. The layer's data
is copied on the main thread (a 2048² layer: ~8 ms); hashing, compressing and writing
run in a worker, and a copy equal to the newest saved one is not written. Closing the
viewer saves what changed since the last tick.

When an image is opened whose recovery folder holds labels that are not in the viewer
(or are newer than the file the viewer's layer came from), a notification offers
"Restore masks"; restoring adds the layer, or replaces the existing one as one undoable
step (Ctrl+Z brings back what was there).
"""

from __future__ import annotations

import os
import warnings
import weakref
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from napari.layers import Image, Labels
from napari.utils.notifications import (
    Notification,
    NotificationSeverity,
    notification_manager,
    show_info,
    show_warning,
)
from psygnal import Signal
from qtpy.QtCore import QCoreApplication, QTimer

from napari_unet._qt.jobs import start_job
from napari_unet._qt.layers import OUTPUT, masks_name, write_labels
from napari_unet._qt.threads import lower_thread_priority
from napari_unet.recovery import Version, image_key, newest_versions, save_version

AUTOSAVE_S = 60.0  # seconds between saves of a changed layer (at most one save per layer per tick)
RESTORE = "Restore masks"  # the notification's button


@dataclass(eq=False)
class _LayerState:
    dirty: bool = True  # changed since its last save (a new layer has never been saved)
    saving: bool = False  # a save of it is running in a worker
    wanted: bool = False  # napari-unet made it or the user edited it: it is autosaved
    image: tuple | None = None  # (data, source, name) of its image when last saved, should the image go first


@dataclass(frozen=True, eq=False)
class _SaveRequest:
    """What a worker needs to save one layer: copies and plain values, no layer."""

    labels: np.ndarray
    layer: str
    image: object  # the image layer's data (read in the worker for its key), or None
    image_source: str | None
    image_name: str
    scale: tuple[float, ...]
    translate: tuple[float, ...]
    protect: tuple = ()

    def key(self) -> str:
        if self.image is None and self.image_source is None:  # labels of no image: their name and shape
            return image_key(name=self.layer, shape=self.labels.shape)
        return image_key(self.image, source=self.image_source, name=self.image_name)


class Autosaver:
    """Saves a session's changed Labels layers in the background and offers to restore them.

    Parameters
    ----------
    session : Session
        The viewer's session; the autosaver stops when it closes.
    interval_s : float, optional
        Seconds between saves (default :data:`AUTOSAVE_S`).

    Signals
    -------
    saved(Version)
        A version was written (on the main thread).
    """

    saved = Signal(object)

    def __init__(self, session, interval_s: float | None = None):  # a Session (it imports us)
        self._session = weakref.ref(session)  # the session holds us
        self._states: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Labels layer -> _LayerState
        self._offered: dict[tuple[str, str], Version] = {}  # (image key, layer name) -> version offered
        self._warned: set[str] = set()  # failure messages already shown (disk full: once, not every minute)
        self.interval_s = AUTOSAVE_S if interval_s is None else float(interval_s)
        self._timer = QTimer()
        self._timer.setInterval(max(1, round(self.interval_s * 1000)))
        ref = weakref.ref(self)  # no strong reference from Qt back to us
        self._timer.timeout.connect(lambda: (me := ref()) is not None and me.save_changed())
        viewer = session.viewer
        session.closing.connect(self._on_closing)
        viewer.layers.events.inserted.connect(self._on_inserted)
        viewer.layers.events.removed.connect(self._on_removed)
        for layer in viewer.layers:
            self._track(layer)
        if QCoreApplication.instance() is not None:  # a viewer model in a script has no event loop
            self._timer.start()

    @property
    def active(self) -> bool:
        """Whether the timer runs (stopped once the viewer closes)."""
        return self._timer.isActive()

    def save_changed(self) -> int:
        """Start a background save of every changed layer that is autosaved; returns how many started."""
        started = 0
        for layer, state in self._due(include_saving=False):
            self._start_save(layer, state)
            started += 1
        return started

    def restore(self, image_layer, version: Version) -> None:
        """Bring back ``version``'s labels: a new layer, or the existing one replaced undoably."""
        session = self._session()
        if session is None or session.closed:
            return
        image_ref = weakref.ref(image_layer)
        start_job(
            session, version.load, desc="restoring masks", show_progress=False,
            on_result=lambda labels: self._apply_restore(image_ref(), version, labels),
            on_error=lambda exc: show_warning(f"napari-unet: could not restore '{version.layer}': {exc}"),
        )

    # -- which layers, and when -----------------------------------------------------------
    def _on_inserted(self, event) -> None:
        self._track(event.value)

    def _on_removed(self, event) -> None:
        """A changed layer that goes (deleted, or ``viewer.close()``) is saved as it was."""
        state = self._states.get(event.value)
        session = self._session()
        if state is None or not state.dirty or state.saving or session is None or session.closed:
            return
        if state.wanted or _made_by_us(session.viewer, event.value) or session.edits.edited(event.value) is not None:
            state.wanted = True
            self._start_save(event.value, state)

    def _track(self, layer) -> None:
        if isinstance(layer, Labels):
            self._states[layer] = _LayerState()
            for emitter in (layer.events.data, layer.events.paint, layer.events.set_data):
                emitter.connect(self._on_change)
        elif isinstance(layer, Image) and OUTPUT not in layer.metadata and not layer.multiscale:
            self._look_for_versions(layer)

    def _on_change(self, event) -> None:
        state = self._states.get(event.source)
        if state is not None:
            state.dirty = True

    def _due(self, include_saving: bool):
        """(layer, state) of every changed layer that is autosaved, in layer-list order."""
        session = self._session()
        viewer = session.viewer if session is not None else None
        if viewer is None:
            return []
        due = []
        for layer in list(viewer.layers):
            state = self._states.get(layer)
            if state is None or not state.dirty or (state.saving and not include_saving):
                continue
            if not state.wanted:  # sticky: once made by us or edited, always saved after changes
                state.wanted = _made_by_us(viewer, layer) or session.edits.edited(layer) is not None
            if state.wanted:
                due.append((layer, state))
        return due

    def _request(self, layer, state: _LayerState) -> _SaveRequest:
        session = self._session()
        image = _image_for(session.viewer, layer)
        if image is not None:
            state.image = (image.data, _source(image), image.name)
        data, source, name = state.image if state.image is not None else (None, None, "")
        return _SaveRequest(
            np.array(layer.data, copy=True), layer.name, data, source, name,
            tuple(layer.scale), tuple(layer.translate),
            tuple(v.path for v in self._offered.values()),  # what the user may still restore
        )

    # -- saving ----------------------------------------------------------------------------
    def _start_save(self, layer, state: _LayerState) -> None:
        request = self._request(layer, state)  # the copy, on the main thread: layers change only here
        state.dirty, state.saving = False, True

        def failed(exc: Exception) -> None:
            state.dirty = True  # try again next tick
            self._warn(f"napari-unet: autosave of '{request.layer}' failed: {exc}")

        def finished() -> None:
            state.saving = False

        start_job(
            self._session(), _save, request, desc="autosave", show_progress=False,
            on_result=self._on_saved, on_error=failed, on_finished=finished,
        )

    def _on_saved(self, version: Version | None) -> None:
        if version is not None:
            self.saved.emit(version)

    def _on_closing(self) -> None:
        """Save what changed since the last tick, here and now: the process may be ending."""
        try:
            self._timer.stop()
        except RuntimeError:  # at interpreter exit PyQt6 may have deleted the timer first
            pass
        for layer, state in self._due(include_saving=True):
            try:
                version = _save(self._request(layer, state), background=False)
            except Exception as exc:  # noqa: BLE001 (the window is closing: say it, never raise)
                warnings.warn(f"napari-unet: autosave of '{layer.name}' failed: {exc}", stacklevel=1)
                continue
            state.dirty = False
            self._on_saved(version)

    def _warn(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            show_warning(message)

    # -- restoring ---------------------------------------------------------------------------
    def _look_for_versions(self, image_layer) -> None:
        """Look (in a worker) for saved labels of this image and offer the ones worth restoring."""
        session = self._session()
        if session is None or session.closed or QCoreApplication.instance() is None:
            return
        image_ref = weakref.ref(image_layer)
        data, source, name = image_layer.data, _source(image_layer), image_layer.name

        def find() -> tuple[str, list[Version]]:
            key = image_key(data, source=source, name=name)
            return key, newest_versions(key)

        start_job(
            session, find, desc="looking for autosaved masks", show_progress=False,
            on_result=lambda found: self._offer(image_ref(), *found),
            on_error=lambda exc: self._warn(f"napari-unet: could not read the recovery folder: {exc}"),
        )

    def _offer(self, image_layer, key: str, found: list[Version]) -> None:
        session = self._session()
        if image_layer is None or session is None or image_layer not in session.viewer.layers:
            return
        for version in found:
            if (key, version.layer) in self._offered or version.shape not in _spatial_shapes(image_layer):
                continue
            if not _worth_restoring(session.viewer, version):
                continue
            self._offered[(key, version.layer)] = version
            me, image_ref = weakref.ref(self), weakref.ref(image_layer)  # notifications are kept forever

            def restore(*_, version=version) -> None:
                autosaver, image = me(), image_ref()
                if autosaver is not None and image is not None:
                    autosaver.restore(image, version)

            notification_manager.dispatch(Notification(
                f"napari-unet autosaved '{version.layer}' for '{image_layer.name}' at {_when(version)}. Restore it?",
                severity=NotificationSeverity.INFO, actions=[(RESTORE, restore)],
            ))

    def _apply_restore(self, image_layer, version: Version, labels: np.ndarray) -> None:
        session = self._session()
        if session is None or session.closed:
            return
        viewer = session.viewer
        name = version.layer
        existing = viewer.layers[name] if name in viewer.layers else None
        if isinstance(existing, Labels) and existing.data.shape == labels.shape:
            if write_labels(existing, labels) is not None:
                show_info(f"Restored '{name}' from {_when(version)}; Ctrl+Z on the layer brings back what was there.")
                return
        if existing is not None:  # another shape or dtype: keep it, add the restored copy beside it
            name = f"{name} (restored)"
        kwargs = {key: value for key, value in (("scale", version.scale), ("translate", version.translate))
                  if value is not None and len(value) == labels.ndim}
        viewer.add_labels(labels, name=name, **kwargs)
        show_info(f"Restored '{name}' from {_when(version)}.")


def _save(request: _SaveRequest, background: bool = True) -> Version | None:
    """Hash, compress and write one layer's copy (in a worker unless ``background`` is False)."""
    if background:
        lower_thread_priority()  # the UI thread wins the core when it needs it
    return save_version(
        request.labels, request.key(), request.layer, image=request.image_source or request.image_name,
        scale=request.scale, translate=request.translate, protect=request.protect,
    )


def _made_by_us(viewer, layer) -> bool:
    """``<image> masks`` (or ``<image> masks (…)``) of an image in the viewer, or marked OUTPUT."""
    return OUTPUT in layer.metadata or any(_is_masks_of(layer, image) for image in _images(viewer))


def _is_masks_of(labels, image) -> bool:
    name = masks_name(image)
    return labels.name == name or labels.name.startswith(f"{name} (")


def _images(viewer) -> list:
    return [layer for layer in viewer.layers
            if isinstance(layer, Image) and OUTPUT not in layer.metadata and not layer.multiscale]


def _image_for(viewer, labels):
    """The image a Labels layer belongs to: by its name, else the first image of its shape; or None."""
    images = _images(viewer)
    by_name = [image for image in images if _is_masks_of(labels, image)]
    if by_name:
        return by_name[0]
    return next((image for image in images if labels.data.shape in _spatial_shapes(image)), None)


def _spatial_shapes(image) -> set[tuple[int, ...]]:
    """The shapes labels of ``image`` can have: all of it, without RGB's last axis, or without a first channel axis."""
    shape = tuple(np.shape(image.data))
    shapes = {shape}
    if image.rgb:
        shapes.add(shape[:-1])
    elif len(shape) >= 3:
        shapes.add(shape[1:])
    return shapes


def _source(layer) -> str | None:
    path = getattr(getattr(layer, "source", None), "path", None)
    return os.fspath(path) if path else None


def _worth_restoring(viewer, version: Version) -> bool:
    """Whether ``version`` holds something the viewer lacks: its layer is absent, or came
    from a file older than the version.
    """
    if version.layer not in viewer.layers:
        return True
    path = _source(viewer.layers[version.layer])
    try:
        return path is not None and os.path.getmtime(path) < version.time
    except OSError:
        return False


def _when(version: Version) -> str:
    return datetime.fromtimestamp(version.time).strftime("%Y-%m-%d %H:%M")
