"""Workarounds that keep the viewer responsive where drawing is slow (software OpenGL, 2 cores).

Each one was measured (docs/benchmarks.md); all of them are behind one switch,
``NAPARI_UNET_WORKAROUNDS=0`` in the environment, so they can be measured on and off
(``bash run.sh bench bench_ui``). Off, each does the plain thing: a layer added in one
go, a progress bar moved with ``setValue``, napari's own progress bar, no warm-up.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from contextlib import contextmanager
from functools import cache

import numpy as np
from napari.layers import Labels
from qtpy.QtCore import QTimer

from napari_unet._qt._napari import attach_overlays, detach_overlays, main_window
from napari_unet._qt.quiet_imports import import_thread, without_gc_pauses

WORKAROUNDS = os.environ.get("NAPARI_UNET_WORKAROUNDS", "1") != "0"


@cache
def software_opengl() -> bool:
    """Whether OpenGL is drawn by the CPU (Mesa llvmpipe/softpipe, SwiftShader): VMs,
    remote desktops, Xvfb.

    There, napari's activity indicator (an animated icon shown while any napari progress
    bar exists) recomposes the whole OpenGL window on every frame: measured on 2 cores,
    it made segmenting a 1024² image take 2.3x as long (40 s instead of 17 s). Asks the
    current vispy canvas (napari's), as napari does for its texture limits.
    """
    if not WORKAROUNDS:
        return False
    from vispy.app import Canvas
    from vispy.gloo import gl
    from vispy.gloo.context import get_current_canvas

    canvas = Canvas(show=False) if get_current_canvas() is None else None
    try:
        renderer = str(gl.glGetParameter(gl.GL_RENDERER) or "").lower()
    except Exception:  # no answer from the driver: keep napari's progress bar
        return False
    finally:
        if canvas is not None:
            canvas.close()
    return any(name in renderer for name in ("llvmpipe", "softpipe", "swiftshader", "software"))


@cache
def warm_labels_layer() -> None:
    """Make napari import what its first Labels layer needs (pandas and more, ~1 s).

    Done once in a worker, so the first result shown does not freeze the viewer. An
    unattached layer is a plain object: no viewer or Qt widget is touched. Also makes
    vispy's dash patterns for line visuals (pure numpy, ~60 ms the first time, then
    cached), which napari needs for a Labels layer's polygon overlay.
    """
    if not WORKAROUNDS:
        return
    Labels(np.zeros((2, 2), np.uint16))
    try:
        from vispy.visuals.line.dash_atlas import DashAtlas
    except ImportError:  # vispy moved it: the first polygon overlay just costs more
        return
    DashAtlas()


LABELS_IMPORTS = ("pandas", "scipy.linalg", "skimage.color")  # what napari's first Labels layer imports


@cache
def warm_up_in_background() -> None:
    """Import what :func:`warm_labels_layer` needs in a thread of its own, once per process.

    Those imports load compiled modules that hold the GIL for ~0.3-0.5 s in all,
    freezing the UI thread too: better while a widget opens than as the first Segment
    starts. Only imports (they are thread-safe): making a layer here could race napari's
    first layer on the main thread (pint's unit registry is set up lazily).
    """
    if not WORKAROUNDS:
        return
    import_thread(import_labels_modules, "napari-unet warm-up").start()


def import_labels_modules() -> None:
    """Import what napari's first Labels layer imports (call it off the UI thread)."""
    with without_gc_pauses():
        for name in LABELS_IMPORTS:
            try:
                importlib.import_module(name)
            except ImportError:  # napari stopped needing it: nothing to warm
                pass


def set_bar(bar, value: int, maximum: int | None = None, text: str | None = None) -> None:
    """Move a ``QProgressBar`` with an ordinary (queued, coalesced) repaint.

    ``QProgressBar.setValue`` repaints at once, inside the call and holding the GIL; in
    a window with napari's OpenGL canvas that recomposes the whole window (~25 ms with
    software OpenGL, ~0.3 s the first time the bar shows), and the worker waits too.
    With updates off during the change, Qt paints the bar with the next frame instead.
    """
    bar.setUpdatesEnabled(not WORKAROUNDS)
    try:
        if maximum is not None:
            bar.setMaximum(maximum)
        bar.setValue(value)
        if text is not None:
            bar.setFormat(text)
    finally:
        bar.setUpdatesEnabled(True)  # schedules the repaint


LATER_OVERLAYS = ("polygon", "brush_stroke")  # Labels' drawing-tool overlays, made after the layer shows
TURN_GAP_MS = 10  # between the steps of showing a new layer: the window repaints in between


def add_labels_in_turns(viewer, data: np.ndarray, alive: Callable[[], bool] = lambda: True, **kwargs) -> Labels:
    """Add a Labels layer to ``viewer`` over several event-loop turns, none much longer
    than drawing one frame; returns the layer, already in the layer list.

    Added in one go, a 2048² layer holds the UI thread for 0.15-0.3 s: napari makes its
    controls and vispy nodes, a vispy overlay for each of its polygon and brush overlays
    (~40 ms, visible or not), uploads the texture and draws. Here the layer is appended
    hidden and without those two overlays; they are put back one per turn, then the layer
    is shown. Until it shows nothing can paint or draw polygons on it. ``alive`` is asked
    before each later step (e.g. whether the viewer is still open); a layer removed in
    between gets its overlays back and is left alone. Other keyword arguments go to ``Labels``.
    """
    if not WORKAROUNDS:
        return viewer.add_layer(Labels(data, **kwargs))
    layer = Labels(data, visible=False, **kwargs)
    held = detach_overlays(layer, LATER_OVERLAYS)
    try:
        with paint_later(main_window(viewer)):
            viewer.add_layer(layer)
    except BaseException:
        attach_overlays(layer, held)
        raise
    layer.set_view_slice()  # napari skips slicing hidden layers; edits before it shows need a slice
    steps = [lambda item=item: attach_overlays(layer, [item]) for item in held]
    steps.append(lambda: setattr(layer, "visible", True))

    def next_step() -> None:
        if not steps:
            return
        if not alive() or layer not in viewer.layers:
            attach_overlays(layer, held)  # whole again, shown or not
            return
        steps.pop(0)()
        if steps:
            QTimer.singleShot(TURN_GAP_MS, next_step)

    QTimer.singleShot(TURN_GAP_MS, next_step)
    return layer


@contextmanager
def paint_later(window):
    """Hold ``window``'s repaints for the block and let them happen on the next turn.

    Adding a layer makes napari update the layer list, the controls and the canvas;
    painted right after, in the same turn, the window stays busy ~25 ms longer (a
    2048² layer: 55-65 ms in all, against 30-40 ms with the paint on a turn of its own,
    where input and timers get in first). ``None`` (no Qt window) holds nothing.
    """
    if window is None or not WORKAROUNDS:
        yield
        return
    window.setUpdatesEnabled(False)
    try:
        yield
    finally:
        QTimer.singleShot(0, lambda: _updates_on(window))


def _updates_on(window) -> None:
    try:
        window.setUpdatesEnabled(True)  # schedules the repaint
    except RuntimeError:  # the window was closed and deleted in between
        pass
