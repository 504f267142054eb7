"""`napari-unet demo`: napari with the sample image, the plugin's widgets docked, the sample segmented."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

PLUGIN = "napari-unet"


def run_demo(screenshot: Path | None = None, model: Path | None = None, timeout: float = 900.0) -> int:
    """Open the demo; with ``screenshot``, wait for the segmentation, save the window and exit.

    Returns the process exit status: 0 when the sample was segmented (or the window was
    closed by the user), 1 when segmentation could not run or did not finish in time.
    """
    if screenshot is not None:
        # toasts (napari's PyQt5 deprecation notice) would cover the picture; errors still
        # show. Read by napari's settings when first loaded, and not saved to them.
        os.environ.setdefault("NAPARI_APPLICATION_GUI_NOTIFICATION_LEVEL", "error")
    import napari
    from npe2 import PluginManifest

    from napari_unet._qt.segment.widget import SegmentWidget

    viewer = napari.Viewer(title="napari-unet demo")
    viewer.open_sample(PLUGIN, "nuclei")
    widgets = [
        viewer.window.add_plugin_dock_widget(PLUGIN, contrib.display_name)[1]
        for contrib in PluginManifest.from_distribution(PLUGIN).contributions.widgets or ()
    ]
    segment = next(w for w in widgets if isinstance(w, SegmentWidget))
    if model is not None and not segment.model.load(model):
        return _fail(viewer, f"could not load {model}", screenshot)
    viewer.window.resize(1500, 950)  # room for the docks next to a square image
    viewer.reset_view()
    segment.segment()
    if not segment.running:
        return _fail(viewer, segment.status.text(), screenshot)
    if screenshot is None:
        napari.run()
        return 0

    if not wait_until(lambda: not segment.running, timeout):
        segment.cancel()
        return _fail(viewer, f"segmentation did not finish in {timeout:.0f} s", screenshot)
    settle()  # the docks have settled the canvas size...
    viewer.reset_view()  # ...so the image fits it
    settle()  # and the new layer is drawn
    print(segment.status.text())
    segmented = any(isinstance(layer, napari.layers.Labels) for layer in viewer.layers)
    viewer.screenshot(str(screenshot), canvas_only=False)
    print(f"saved {screenshot}")
    viewer.close()
    return 0 if segmented else 1


def wait_until(done: Callable[[], bool], timeout: float = 900.0) -> bool:
    """Run Qt's event loop (as napari.run does) until ``done()`` or ``timeout`` seconds.

    For scripts that drive the app: demo, screenshots, benchmarks. Returns ``done()``.
    """
    from qtpy.QtCore import QEventLoop, QTimer

    if done():
        return True
    loop = QEventLoop()
    check, deadline = QTimer(), QTimer()
    check.timeout.connect(lambda: done() and loop.quit())
    deadline.setSingleShot(True)
    deadline.timeout.connect(loop.quit)
    check.start(5)
    deadline.start(int(timeout * 1000))
    loop.exec()
    check.stop()
    deadline.stop()
    return done()


def settle(seconds: float = 0.4) -> None:
    """Let the event loop run (draw, deliver signals) for ``seconds``."""
    end = time.monotonic() + seconds
    wait_until(lambda: time.monotonic() >= end, seconds + 1)


def _fail(viewer, message: str, screenshot: Path | None) -> int:
    print(f"napari-unet demo: {message}", file=sys.stderr)
    if screenshot is not None:
        viewer.close()
        return 1
    import napari

    napari.run()  # leave the window open: the widget shows the same message
    return 1
