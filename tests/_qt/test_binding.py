"""A default install runs napari on PyQt6 (napari's default binding): no deprecation toast.

CI runs the viewer tests a second time under PyQt5 (`bash run.sh test-pyqt5`), which
stays supported; this file is the one that holds only for the default binding.
"""

from __future__ import annotations

import os
import subprocess
import sys

import qtpy

# A new napari window with the three docks, as a user opens it; prints what napari notified.
OPEN_NAPARI = """
import napari
from napari.utils.notifications import notification_manager
from qtpy.QtWidgets import QApplication
seen = []
notification_manager.notification_ready.connect(lambda n: seen.append(n.message))
viewer = napari.Viewer(show=True)
for name in ("Segment", "Click to segment", "Fine-tune"):
    viewer.window.add_plugin_dock_widget("napari-unet", name)
for _ in range(20):
    QApplication.processEvents()
print("NOTIFIED", repr(seen))
viewer.close()
"""


def test_the_default_binding_is_pyqt6():
    assert qtpy.API_NAME == "PyQt6", (
        f"running on {qtpy.API_NAME}: run.sh installs PyQt6 and sets QT_API=pyqt6 (PyQt5 is deprecated in napari)")


def test_opening_napari_with_the_docks_shows_no_deprecation_toast(tmp_path):
    env = {**os.environ, "NAPARI_UNET_CONFIG_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", OPEN_NAPARI], capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    notified = next(line for line in done.stdout.splitlines() if line.startswith("NOTIFIED"))
    assert "deprecated" not in notified.lower(), notified
