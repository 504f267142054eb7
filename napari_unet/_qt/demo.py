"""`napari-unet demo`: napari with the sample image, the plugin's widgets docked, the sample segmented;
`napari-unet demo --medical`: the MR phantom, a model trained from five of its slices, its class map.
"""

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


MEDICAL_SLICES = (6, 13, 20, 26, 33)  # the phantom's "painted" slices: five of its 40
MEDICAL_IMAGE = "abdomen MR (synthetic)"


def run_medical_demo(screenshot: Path | None = None, seconds: float = 120.0, timeout: float = 900.0) -> int:
    """Open the MR phantom with labels on five slices, train a model on them with New model
    for ``seconds``, show its class map; with ``screenshot``, save the window then and exit.

    Returns 0 when the class map was shown (or the window was closed by the user), 1 when
    training could not start or did not end in time.
    """
    if screenshot is not None:
        os.environ.setdefault("NAPARI_APPLICATION_GUI_NOTIFICATION_LEVEL", "error")  # as run_demo
    import napari
    import numpy as np

    from napari_unet._qt.train.widget import NewModelWidget  # PyTorch loaded first: the docks build at once

    viewer = napari.Viewer(title="napari-unet demo: a new model from five painted slices")
    viewer.open_sample(PLUGIN, "phantom_mr")
    labels = viewer.layers[f"{MEDICAL_IMAGE} classes"]
    painted = np.zeros_like(labels.data)
    keep = list(MEDICAL_SLICES)
    painted[keep] = labels.data[keep]
    labels.data = painted
    labels.name = "painted (5 slices)"
    viewer.window.add_plugin_dock_widget(PLUGIN, "Segment")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "New model")
    assert isinstance(widget, NewModelWidget)
    viewer.window.resize(1500, 950)
    viewer.dims.set_current_step(0, MEDICAL_SLICES[2])
    widget.image.set_current(viewer.layers[MEDICAL_IMAGE])
    widget.labels.setCurrentText(labels.name)
    widget.unit.setCurrentText("seconds")
    widget.budget.setValue(max(1, round(seconds)))
    widget.start()
    if not widget.running:
        return _fail(viewer, widget.status.text(), screenshot)
    if screenshot is None:
        napari.run()
        return 0

    answer = f"{MEDICAL_IMAGE} classes (new model)"
    if not wait_until(lambda: not widget.running, seconds + timeout):
        widget.stop()
        return _fail(viewer, f"training did not end in {seconds + timeout:.0f} s", screenshot)
    shown = answer in viewer.layers
    if shown:
        labels.visible = False
        viewer.layers.selection.active = viewer.layers[answer]
    settle()
    viewer.reset_view()
    settle()
    print(widget.score.text())
    print(widget.status.text())
    viewer.screenshot(str(screenshot), canvas_only=False)
    print(f"saved {screenshot}")
    viewer.close()
    return 0 if shown else 1


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
