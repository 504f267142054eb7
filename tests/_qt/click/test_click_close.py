"""Closing the viewer, or ending the process, while a click's network pass runs: no crash,
nothing written, no thread left behind.

A worker still running when the process ends emits ``finished`` into a signals object PyQt
has already deleted, and Qt aborts the process: only a separate process shows that.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from _click_models import threshold_click_unet
from _clicking import WAIT_MS, click, masks

from napari_unet._qt.session import session_for

TESTS = Path(__file__).parents[2]
PASS_S = 2.0  # how long the slowed click pass runs

END_DURING_A_CLICK = """
import napari
from _click_models import disk_image, threshold_click_unet
from _clicking import click
from test_click_close import slowed
from napari_unet._qt.demo import wait_until
from napari_unet._qt.session import session_for

viewer = napari.Viewer(show=False)
viewer.add_image(disk_image(), name="cells")
model, in_pass = slowed(threshold_click_unet())
session_for(viewer).set_click_model(model)
_, widget = viewer.window.add_plugin_dock_widget("napari-unet", "Click to segment")
widget.first_from_model.setChecked(False)
widget.toggle.setChecked(True)
wait_until(lambda: not widget.tool.busy, 60)
click(viewer, (30, 30))
print("PASS STARTED", wait_until(in_pass.is_set, 60), flush=True)
if CLOSE:
    viewer.close()
print("ENDING", flush=True)
"""


def slowed(model):
    """``model`` with a network pass of :data:`PASS_S` seconds; the event is set when one starts."""
    started = threading.Event()
    model.register_forward_pre_hook(lambda *_: started.set() or time.sleep(PASS_S))
    return model, started


@pytest.mark.parametrize("close", [True, False], ids=["viewer closed", "process ends"])
def test_ending_during_a_click_does_not_crash(tmp_path, close):
    """The viewer is closed while the pass runs and the process ends, or the process ends at once."""
    paths = [str(TESTS), str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p),
           "NAPARI_CONFIG": str(tmp_path / "napari.yaml")}
    script = f"CLOSE = {close}\n{END_DURING_A_CLICK}"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    output = done.stdout + done.stderr
    assert "PASS STARTED True" in done.stdout, output[-3000:]
    assert "ENDING" in done.stdout, output[-3000:]
    assert done.returncode == 0, output[-3000:]  # -6 / 134: Qt aborted at exit
    assert "has been deleted" not in output, output[-3000:]


def test_closing_the_viewer_stops_the_click_and_waits_for_its_thread(clicker, qtbot):
    viewer, widget = clicker()
    session = session_for(viewer)
    model, started = slowed(threshold_click_unet())
    session.set_click_model(model)
    qtbot.waitUntil(lambda: not widget.tool.busy, timeout=WAIT_MS)
    layer, written = masks(viewer), []
    widget.tool.written.connect(written.append)
    click(viewer, (30, 30))
    qtbot.waitUntil(started.is_set, timeout=WAIT_MS)
    workers = list(session._workers)
    viewer.close()
    assert workers and not any(w.is_running for w in workers)  # joined: none outlives its viewer
    qtbot.wait(50)  # the stopped pass's queued signals are delivered
    assert written == [] and not layer.data.any()  # its answer never reached the layer
