"""The first dock while PyTorch loads, and a dock's Help window, from the real app.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/help_screenshots.py

Writes docs/images/dock-loading.png (Segment opened from the Plugins menu in a fresh napari,
before PyTorch is loaded) and docs/images/segment-help.png (its Help link clicked).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("NAPARI_APPLICATION_GUI_NOTIFICATION_LEVEL", "error")  # no toasts in pictures

import napari  # noqa: E402
from qtpy.QtWidgets import QLabel  # noqa: E402

from napari_unet._qt.demo import settle, wait_until  # noqa: E402
from napari_unet._qt.docks import inner  # noqa: E402

IMAGES = Path(__file__).resolve().parent / "images"


def main() -> None:
    assert "torch" not in sys.modules, "run this in a fresh interpreter: the loading dock shows only then"
    viewer = napari.Viewer(title="napari-unet")
    window = viewer.window._qt_window
    window.showNormal()
    window.resize(1100, 700)
    settle(0.5)
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "Segment")
    settle(0.3)
    window.grab().save(str(IMAGES / "dock-loading.png"))
    wait_until(lambda: inner(widget) is not None, timeout=300)
    settle(0.5)
    link = next(label for label in inner(widget).findChildren(QLabel) if label.text().startswith("<a href="))
    link.linkActivated.emit("segmenting.md")
    help_window = link.windows[-1]
    help_window.resize(760, 640)
    settle(1.0)
    help_window.grab().save(str(IMAGES / "segment-help.png"))
    viewer.close()


if __name__ == "__main__":
    main()
