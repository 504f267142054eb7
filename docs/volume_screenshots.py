"""Take the screenshots of docs/volumes.md from the real app (under Xvfb when headless).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/volume_screenshots.py

Writes docs/images/volume-*.png: a generated confocal-like stack segmented from the Segment
widget with 'stack axis' set to Z, shown in napari's 3D view, and the widget's dock.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("NAPARI_APPLICATION_GUI_NOTIFICATION_LEVEL", "error")  # no toasts in pictures

import napari  # noqa: E402
from segment_screenshots import SIZE, save_dock  # noqa: E402

from napari_unet._qt.demo import settle, wait_until  # noqa: E402
from napari_unet._qt.segment.widget import DEPTH  # noqa: E402
from napari_unet.synth.volumes import synth_volume  # noqa: E402

IMAGES = Path(__file__).resolve().parent / "images"


def main() -> None:
    volume = synth_volume(5001, (32, 192, 192))
    viewer = napari.Viewer(title="napari-unet")
    viewer.window.resize(*SIZE)
    viewer.add_image(volume.image, name="stack", scale=volume.spacing, colormap="gray")
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "Segment")
    widget.stack_axis.setCurrentText(DEPTH)
    widget.segment()
    assert wait_until(lambda: not widget.running, 1800), "segmentation did not finish"
    settle()
    print(widget.status.text())
    save_dock(widget, "volume-dock.png")
    viewer.dims.ndisplay = 3
    viewer.layers["stack"].visible = False
    viewer.reset_view()
    viewer.scene.camera.angles = (0, -40, 60)
    viewer.scene.camera.zoom *= 0.9
    settle(1.0)
    viewer.screenshot(str(IMAGES / "volume-3d.png"), canvas_only=False)
    print("wrote volume-3d.png")
    viewer.close()


if __name__ == "__main__":
    main()
