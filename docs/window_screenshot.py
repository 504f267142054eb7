"""The three napari-unet docks on a 1366x768 laptop screen, from the real app.

    xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python docs/window_screenshot.py

Writes docs/images/laptop-1366x768.png: napari at 1366x768 with the sample image and the
Segment, Click to segment and Fine-tune docks opened as the Plugins menu opens them.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("NAPARI_APPLICATION_GUI_NOTIFICATION_LEVEL", "error")  # no toasts in pictures

import napari  # noqa: E402

from napari_unet._qt.demo import settle  # noqa: E402
from napari_unet.synth.sample import nuclei_sample  # noqa: E402

IMAGES = Path(__file__).resolve().parent / "images"


def main() -> None:
    viewer = napari.Viewer(title="napari-unet")
    window = viewer.window._qt_window
    window.showNormal()
    window.resize(1366, 768)
    viewer.add_image(nuclei_sample((512, 512)).image, name="nuclei")
    for name in ("Segment", "Click to segment", "Fine-tune"):
        viewer.window.add_plugin_dock_widget("napari-unet", name)
    settle(1.0)
    print(f"window {window.width()}x{window.height()}")
    window.grab().save(str(IMAGES / "laptop-1366x768.png"))
    viewer.close()


if __name__ == "__main__":
    main()
