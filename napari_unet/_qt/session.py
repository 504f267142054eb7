"""One :class:`Session` per viewer: the models, device and cached predictions all widgets share.

The session holds both networks: the segmentation model (Segment) and the click network
(the click tool). Fine-tuning replaces them together, and Revert brings both back.
The Segment widget, the click tool and fine-tuning find the same session with
:func:`session_for`; there is no global model. Sessions live in a weak mapping keyed by
the viewer, so a closed and collected viewer takes its session (and model) with it.
"""

from __future__ import annotations

import atexit
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from psygnal import Signal
from qtpy.QtCore import QEvent, QObject, QThreadPool

from napari_unet._qt._napari import main_window, unwrap
from napari_unet._qt.autosave import Autosaver
from napari_unet._qt.docks import take_preloaded
from napari_unet._qt.edits import EditLog
from napari_unet._qt.quiet_imports import thaw
from napari_unet._qt.segment.context import add_context_entry
from napari_unet.clicks.segmenter import load_click_model
from napari_unet.devices import available_devices
from napari_unet.model.files import DEFAULT_MODEL, click_model_beside, load_model, model_card, shipped_model

if TYPE_CHECKING:
    import napari

    from napari_unet.model.unet import UNet

_SESSIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
HISTORY_LENGTH = 3  # earlier models kept for Session.revert (each holds a copy of the weights)
CLOSE_WAIT_S = 10.0  # a closing viewer waits this long for its stopped jobs (a plain function runs to its end)
EXIT_WAIT_S = 60.0  # the process, when it ends, waits this long for worker threads still running


def session_for(viewer: napari.Viewer) -> Session:
    """The viewer's session, created on first use."""
    viewer = unwrap(viewer)
    session = _SESSIONS.get(viewer)
    if session is None:
        session = _SESSIONS[viewer] = Session(viewer)
        add_context_entry()  # Layers context menu > Segment with U-Net, from the first dock on
    return session


@dataclass(frozen=True)
class Prediction:
    """Network output kept so post-processing can change without a new network pass."""

    probabilities: np.ndarray  # float32 (n_classes, *spatial) at the network's zoom, or one plane's
    plane: int | None  # index along the first spatial axis (a Z, T series: along T); None = the whole layer
    model_version: int  # Session.model_version when predicted; stale once the model changes
    task: str  # the model card's task, which decides the post-processing
    shape: tuple[int, ...] | None = None  # the labels' shape (None: the probabilities' own)
    axes: str | None = None  # [T][Z]YX when the stack's axis was known (Z: 3D objects), else None
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)  # the voxel size 3D objects were split with


@dataclass(frozen=True)
class ModelVersion:
    """The models that were in use before, kept so :meth:`Session.revert` can bring them back."""

    model: UNet
    name: str
    source: Path | None
    click_model: UNet | None  # None: the shipped one, loaded when first needed


class Session:
    """What the napari-unet widgets of one viewer share.

    Signals
    -------
    model_changed(model)
        A new model is in use (loaded from a file, fine-tuned or reverted; the
        click network may have changed with it); cached predictions were dropped.
    device_changed(str)
        The device jobs should run on.
    closing()
        The viewer is closing, or the process is ending with it open; running
        jobs were asked to stop and must not touch layers any more.
    masks_refreshed(str)
        Another widget rewrote masks layers (the fine-tuned model's refresh); the
        text says what changed, for the Segment widget's status.
    """

    model_changed = Signal(object)
    device_changed = Signal(str)
    closing = Signal()
    masks_refreshed = Signal(str)

    def __init__(self, viewer: napari.Viewer):
        self._viewer = weakref.ref(viewer)
        self.model: UNet | None = None
        self.model_name = ""  # shown in the model pickers
        self.model_source: Path | None = None  # the file the weights came from, if any
        self.model_version = 0  # bumped on every model change; predictions carry it
        self.click_model: UNet | None = None  # the click tool's network (see ensure_click_model)
        self._volume_model: UNet | None = None  # the shipped 3D nuclei network, once a volume needed it
        self.history: list[ModelVersion] = []  # earlier models, newest last (see revert)
        self.edits = EditLog(viewer)  # where the user painted, for fine-tuning on corrections
        self.device = available_devices()[0]
        self.closed = False
        self._predictions: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._workers: set = set()
        self._watcher = _CloseWatcher(viewer, self._on_viewer_closing)
        viewer.layers.events.removed.connect(thaw)  # a removed layer's memory is freed, frozen or not
        self.autosaver = Autosaver(self)  # recovery copies of the masks; stops when the viewer closes

    @property
    def viewer(self) -> napari.Viewer | None:
        return self._viewer()

    # -- model and device -------------------------------------------------------------
    def set_model(
        self, model: UNet, name: str | None = None, source: Path | None = None, *,
        click_model: UNet | None = None, remember: bool = True,
    ) -> None:
        """Use ``model`` (and ``click_model``, if given) from now on. Jobs already running
        keep the models they started with.

        With ``remember`` the models they replace go into :attr:`history` for :meth:`revert`.
        """
        if remember and self.model is not None and self.model is not model:
            self.history.append(ModelVersion(self.model, self.model_name, self.model_source, self.click_model))
            del self.history[:-HISTORY_LENGTH]
        if click_model is not None:
            self.click_model = click_model
        self.model = model
        self.model_name = name or model_card(model).name
        self.model_source = source
        self.model_version += 1
        self._predictions.clear()
        self.model_changed.emit(model)

    def revert(self) -> UNet:
        """Go back to the models used before the current ones (raises ValueError if none)."""
        if not self.history:
            raise ValueError("no earlier model to go back to")
        version = self.history.pop()
        self.click_model = version.click_model
        self.set_model(version.model, version.name, version.source, remember=False)
        return version.model

    def load_model(self, path: str | Path | None = None) -> UNet:
        """Load a model file (``None``: the shipped default) and use it.

        A click network saved beside it (``<name>_click.safetensors``, as Save model…
        writes) becomes the click tool's network too.

        Raises
        ------
        ModelFileError
            The file is missing, damaged or not a napari-unet model; the current
            model stays in use.
        """
        model = (take_preloaded() if path is None else None) or load_model(path)
        source = Path(path) if path is not None else DEFAULT_MODEL
        beside = click_model_beside(source)
        click_model = load_click_model(beside) if path is not None and beside.exists() else None
        self.set_model(model, model_card(model).name, source, click_model=click_model)
        return model

    def ensure_model(self) -> UNet:
        """The current model, loading the shipped default on first use (may raise ModelFileError)."""
        return self.model if self.model is not None else self.load_model()

    def model_for(self, axes: str | None, shape: tuple[int, ...] | None = None) -> UNet:
        """The model that segments an image of ``axes`` and ``shape``: the current one, except that
        while it is the shipped 2D nuclei model a volume of one channel gets the shipped 3D nuclei
        network (the two are one default, :func:`~napari_unet.model.files.shipped_model`).
        """
        model = self.ensure_model()
        path = shipped_model(axes, shape)
        shipped = self.model_source is not None and Path(self.model_source).resolve() == DEFAULT_MODEL.resolve()
        if not shipped or path == DEFAULT_MODEL:
            return model
        if self._volume_model is None:
            self._volume_model = load_model(path)
        return self._volume_model

    def ensure_click_model(self) -> UNet:
        """The click network, loading the shipped one on first use (may raise ModelFileError)."""
        if self.click_model is None:
            self.click_model = load_click_model()
        return self.click_model

    def set_click_model(self, model: UNet) -> None:
        """Use ``model`` for clicks from the next click on (a script's or a test's choice)."""
        self.click_model = model

    def set_device(self, device: str) -> None:
        if device != self.device:
            self.device = device
            self.device_changed.emit(device)

    # -- cached predictions -----------------------------------------------------------
    def store_prediction(self, layer, prediction: Prediction) -> None:
        self._predictions[unwrap(layer)] = prediction

    def prediction(self, layer) -> Prediction | None:
        """The cached prediction for an image layer, if it came from the current model."""
        found = self._predictions.get(unwrap(layer))
        return found if found is not None and found.model_version == self.model_version else None

    # -- jobs ---------------------------------------------------------------------------
    def track(self, worker):
        """Stop ``worker`` if the viewer closes; returns it."""
        if self.closed:
            worker.quit()
        self._workers.add(worker)
        worker.finished.connect(lambda: self._workers.discard(worker))
        return worker

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the threads of this session's running jobs to end;
        returns whether they all did. Their results, still queued, are delivered later.
        """
        deadline = time.monotonic() + timeout
        while any(worker.is_running for worker in list(self._workers)):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)  # releases the GIL the jobs need
        return True

    def _on_viewer_closing(self) -> None:
        """Stop the jobs and wait for their threads: none outlives its viewer by more than
        :data:`CLOSE_WAIT_S` (see :func:`_close_sessions_at_exit`), and an autosave started
        as the layers went is on disk when the window is gone.
        """
        if self.closed:
            return
        self.closed = True
        thaw()
        for worker in list(self._workers):
            worker.quit()
        self._predictions.clear()
        self.closing.emit()
        self.join(CLOSE_WAIT_S)


@atexit.register
def _close_sessions_at_exit() -> None:
    """Close the sessions of viewers still open, and wait for every worker thread, before the
    interpreter ends.

    As it ends PyQt deletes the Qt objects Python owns: a worker thread still running then
    emits ``finished`` into a deleted signals object, and a session closed only when its
    window is destroyed runs its ``closing`` callbacks on deleted timers; either way Qt
    aborts the process. Registered after PyQt's own exit handler, so it runs first, while
    everything is alive.
    """
    try:
        for session in list(_SESSIONS.values()):
            session._on_viewer_closing()
    finally:
        QThreadPool.globalInstance().waitForDone(round(EXIT_WAIT_S * 1000))


class _CloseWatcher(QObject):
    """Calls back once, synchronously, when the viewer's window closes.

    It must be synchronous: a worker's result already queued on the event loop is
    delivered before any deferred deletion, and must find the session closed.
    """

    def __init__(self, viewer, on_close):
        window = main_window(viewer)
        super().__init__(window)  # owned by the window: no reference back to it from here,
        self._on_close = on_close  # or the weakly keyed session would keep the viewer alive
        if window is not None:
            window.installEventFilter(self)
            window.destroyed.connect(lambda *_: on_close())

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt API)
        kind = event.type()
        # a shown window that accepts its close event is hidden (non-spontaneously);
        # a never-shown one (tests, scripts) gets only the close event, which cannot be
        # refused because no dialog is shown for it
        hidden_by_close = kind == QEvent.Type.Hide and not event.spontaneous()
        closed_unshown = kind == QEvent.Type.Close and not obj.isVisible()
        if hidden_by_close or closed_unshown:
            self._on_close()
        return False
