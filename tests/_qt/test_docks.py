"""The first dock in a fresh napari: shown at once, PyTorch and the model loaded in a thread.

This runs in a fresh interpreter, as a user's napari is: in the test process PyTorch is
loaded already, and the Plugins menu then builds the real widget directly.
"""

from __future__ import annotations

import os
import subprocess
import sys

FRESH_NAPARI = r"""
import gc, sys, time, weakref
import napari
import numpy as np
from qtpy.QtWidgets import QApplication
from napari_unet._qt.docks import LoadingDock, inner

viewer = napari.Viewer()
app = QApplication.instance()
opened = viewer.add_image(np.zeros((256, 256), np.float32), name="open before")
start = time.perf_counter()
_, widget = viewer.window.add_plugin_dock_widget("napari-unet", "Segment")
print("SHOWN", type(widget).__name__, "torch loaded:", "torch" in sys.modules)
while inner(widget) is None and widget.error is None and time.perf_counter() - start < 200:
    app.processEvents()
    time.sleep(0.01)
real = inner(widget)
print("READY", type(real).__name__, "model:", real.session.model is not None, "error:", widget.error)
_, second = viewer.window.add_plugin_dock_widget("napari-unet", "Fine-tune")
print("SECOND", type(second).__name__)
gone = weakref.ref(opened)
viewer.layers.remove(opened)
del opened
app.processEvents()
gc.collect()
print("FREED", gone() is None)
viewer.close()
"""


def test_the_first_dock_shows_at_once_and_becomes_the_widget_when_pytorch_is_loaded(tmp_path):
    env = {**os.environ, "NAPARI_UNET_CONFIG_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", FRESH_NAPARI], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line.split()}
    assert lines["SHOWN"] == "SHOWN LoadingDock torch loaded: False", done.stdout
    assert lines["READY"] == "READY SegmentWidget model: True error: None", done.stdout
    assert lines["SECOND"] == "SECOND FinetuneWidget", done.stdout  # PyTorch is there: built at once
    # the loading froze what existed (quiet_imports): a layer open then is still freed when removed
    assert lines["FREED"] == "FREED True", done.stdout


def test_importing_the_package_does_not_load_pytorch():
    code = "import sys, napari_unet, napari_unet._qt.docks; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr[-2000:]
