"""What the Plugins menu opens: each dock, without freezing napari while PyTorch loads.

The first dock of a session needs PyTorch, the widget modules and the shipped model:
seconds of work that, done where napari calls the factory (its main thread), froze the
viewer ~5 s. Here the factory answers at once with a :class:`LoadingDock` that says what
is happening, the work runs in a thread, and the real widget takes its place when it is
ready. Once PyTorch is loaded, a factory returns the real widget directly.

This module imports nothing heavy: only qtpy and the standard library.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import os
import sys
import threading
from pathlib import Path

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

from napari_unet._qt.quiet_imports import import_thread, without_gc_pauses

POLL_MS = 50  # how often the loading dock looks whether the thread is done
START_DELAY_MS = 100  # the loading starts once the dock is in place (they would compete for the GIL)
# PyTorch's shared libraries, in load order: ~1 s of loading and relocating. ``import
# torch`` (and ``ctypes.CDLL``) load them holding the GIL, which froze the UI thread for
# as long; called through ctypes as a foreign function, libc's ``dlopen`` runs with the
# GIL released (the UI thread's longest wait fell from ~1000 ms to ~30 ms), and ``import
# torch`` then finds them loaded.
TORCH_LIBRARIES = ("libc10.so", "libtorch_cpu.so", "libtorch_cuda.so", "libtorch.so", "libtorch_python.so")


def preload_torch() -> None:
    """Load PyTorch's shared libraries without holding the GIL (Linux; elsewhere a no-op)."""
    if "torch" in sys.modules or not sys.platform.startswith("linux"):
        return
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return
    lib = Path(next(iter(spec.submodule_search_locations))) / "lib"
    dlopen = ctypes.CDLL(None).dlopen  # a foreign call: ctypes releases the GIL around it
    dlopen.restype, dlopen.argtypes = ctypes.c_void_p, (ctypes.c_char_p, ctypes.c_int)
    for name in TORCH_LIBRARIES:
        if (lib / name).exists():  # CPU-only wheels have no libtorch_cuda: torch decides
            dlopen(str(lib / name).encode(), os.RTLD_NOW | os.RTLD_GLOBAL)  # a failure: torch says why


DOCK_MODULES = ("napari_unet._qt.segment.widget", "napari_unet._qt.click.widget",
                "napari_unet._qt.finetune.widget", "napari_unet._qt.train.widget")


def warm_up() -> None:
    """Everything the docks need before a widget is built: PyTorch, their modules, the shipped model."""
    from napari_unet import _gl_guard

    _gl_guard.block_triton()  # napari has drawn: keep triton out, as at package import
    with without_gc_pauses():
        preload_torch()
        for module in DOCK_MODULES:  # all of them: the next dock opened then builds at once
            importlib.import_module(module)
        from napari_unet._qt._perf import import_labels_modules

        # here rather than in a thread of the widget's, which competed for the GIL as it was built
        import_labels_modules()
        from napari_unet.model.files import load_model

        _PRELOADED[:] = [load_model()]  # the first session takes it: the UI thread does not load it again


_PRELOADED: list = []  # the shipped model, loaded by warm_up off the UI thread


def take_preloaded():
    """The shipped model :func:`warm_up` loaded (once: sessions never share a network), or None.

    Loading builds the network and reads its file, ~0.2 s the first dock would otherwise
    spend on the UI thread.
    """
    return _PRELOADED.pop() if _PRELOADED else None


class LoadingDock(QWidget):
    """A dock's place-holder while :func:`warm_up` runs; then it holds the real widget (``inner``)."""

    def __init__(self, napari_viewer, module: str, widget_class: str, title: str):
        super().__init__()
        self.inner: QWidget | None = None
        self.error: BaseException | None = None
        self._build = lambda: _widget(napari_viewer, module, widget_class)
        self.message = QLabel(f"{title}: starting PyTorch and loading the model (first time only, a few "
                              "seconds). napari stays usable meanwhile.")
        self.message.setWordWrap(True)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.addWidget(self.message)
        self._done = threading.Event()
        self._thread = import_thread(self._work, f"napari-unet {title}")
        QTimer.singleShot(START_DELAY_MS, self._thread.start)  # after napari has placed and drawn the dock
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._check)
        self._timer.start(POLL_MS)

    def _work(self) -> None:
        try:
            warm_up()
        except BaseException as exc:  # noqa: BLE001 (shown in the dock, never raised in a thread)
            self.error = exc
        self._done.set()

    def _check(self) -> None:
        if not self._done.is_set():
            return
        self._timer.stop()
        if self.error is not None:
            self.message.setText(f"napari-unet could not start: {self.error}. Check the installation "
                                 "(bash run.sh test) and open the dock again.")
            return
        self.inner = self._build()
        self.message.hide()
        self._layout.addWidget(self.inner)

    def ready(self) -> bool:
        """Whether the real widget is in place."""
        return self.inner is not None


def _widget(napari_viewer, module: str, widget_class: str) -> QWidget:
    return getattr(importlib.import_module(module), widget_class)(napari_viewer)


def _dock(napari_viewer, module: str, widget_class: str, title: str) -> QWidget:
    if "torch" in sys.modules:  # loaded already (another dock, a script): nothing slow is left
        return _widget(napari_viewer, module, widget_class)
    return LoadingDock(napari_viewer, module, widget_class, title)


def inner(widget: QWidget) -> QWidget | None:
    """The real widget of what a factory returned (None while it is still loading)."""
    return widget.inner if isinstance(widget, LoadingDock) else widget


class _Dock:
    """What napari calls to build a dock: ``Dock(napari_viewer=...)``.

    napari passes the viewer to a class whose ``__init__`` has a ``napari_viewer``
    parameter (it reads that signature; a plain function would get nothing), so each
    dock is a class whose ``__new__`` answers with the real widget or a LoadingDock.
    """

    module = widget_class = title = ""

    def __new__(cls, napari_viewer):
        return _dock(napari_viewer, cls.module, cls.widget_class, cls.title)

    def __init__(self, napari_viewer):  # never runs: __new__ returns another class's object
        raise AssertionError("unreachable")


class SegmentDock(_Dock):
    """Plugins › napari-unet › Segment."""

    module, widget_class, title = "napari_unet._qt.segment.widget", "SegmentWidget", "Segment"


class ClickDock(_Dock):
    """Plugins › napari-unet › Click to segment."""

    module, widget_class, title = "napari_unet._qt.click.widget", "ClickWidget", "Click to segment"


class FinetuneDock(_Dock):
    """Plugins › napari-unet › Fine-tune."""

    module, widget_class, title = "napari_unet._qt.finetune.widget", "FinetuneWidget", "Fine-tune"


class NewModelDock(_Dock):
    """Plugins › napari-unet › New model."""

    module, widget_class, title = "napari_unet._qt.train.widget", "NewModelWidget", "New model"
