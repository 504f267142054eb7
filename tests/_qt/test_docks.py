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


# napari closed while the first dock still loads PyTorch: the process waits for the loading
# thread before the interpreter ends (a daemon thread stopped inside PyTorch's C++ crashed it).
CLOSED_WHILE_LOADING = r"""
import atexit, threading, time

def still_running():
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("napari-unet"))

atexit.register(lambda: print("AT EXIT", still_running(), flush=True))  # first registered: runs last
import napari
from qtpy.QtWidgets import QApplication

viewer = napari.Viewer()
viewer.window.add_plugin_dock_widget("napari-unet", "Segment")
start = time.perf_counter()
while time.perf_counter() - start < 0.5:  # the loading thread starts 0.1 s after the dock is shown
    QApplication.processEvents()
    time.sleep(0.01)
print("CLOSING", still_running(), flush=True)
viewer.close()
"""


def test_closing_napari_while_a_dock_loads_waits_for_it_and_exits_cleanly(tmp_path):
    env = {**os.environ, "NAPARI_UNET_CONFIG_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", CLOSED_WHILE_LOADING], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line.split()}
    assert "'napari-unet Segment'" in lines["CLOSING"], done.stdout  # still loading as napari closed
    assert lines["AT"] == "AT EXIT []", done.stdout
