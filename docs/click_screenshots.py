"""Take the screenshot of docs/clicking.md from the real app (under Xvfb when headless).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/click_screenshots.py

Writes docs/images/click-objects.png: the sample image, click mode on, a dozen nuclei
clicked once each through the click tool, the view zoomed in on them.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("NAPARI_APPLICATION_GUI_NOTIFICATION_LEVEL", "error")  # no toasts in pictures

import napari  # noqa: E402
import numpy as np  # noqa: E402
from scipy import ndimage as ndi  # noqa: E402

from napari_unet._qt.demo import settle, wait_until  # noqa: E402
from napari_unet.clicks.segmenter import farthest_point  # noqa: E402
from napari_unet.synth.sample import nuclei_sample  # noqa: E402

IMAGES = Path(__file__).resolve().parent / "images"
REGION = (slice(300, 700), slice(420, 720))  # the part of the 1024² sample shown (portrait)
ZOOM = 2.0  # fits REGION in the canvas between the docks


def main() -> None:
    IMAGES.mkdir(exist_ok=True)
    sample = nuclei_sample()
    viewer = napari.Viewer(title="napari-unet")
    viewer.window.resize(1500, 950)
    viewer.add_image(sample.image, name="nuclei (synthetic)")
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "Click to segment")
    widget.toggle.setChecked(True)
    tool = widget.tool
    assert wait_until(lambda: not tool.busy, 120)

    labels = sample.labels
    inside = labels[REGION]
    ids = [i for i in np.unique(inside)[1:] if (inside == i).sum() == (labels == i).sum() > 150][:12]
    boxes = ndi.find_objects(labels)
    for i in ids:
        ys, xs = boxes[i - 1]
        y, x = farthest_point(labels[ys, xs] == i)
        tool.click((ys.start + y, xs.start + x))
        assert wait_until(lambda: not tool.busy, 120)
        tool.end_object()

    y0, y1, x0, x1 = REGION[0].start, REGION[0].stop, REGION[1].start, REGION[1].stop
    viewer.camera.center = ((y0 + y1) / 2, (x0 + x1) / 2)
    viewer.camera.zoom = ZOOM
    settle()
    viewer.screenshot(str(IMAGES / "click-objects.png"), canvas_only=False)
    print("wrote click-objects.png;", widget.status.text())
    viewer.close()


if __name__ == "__main__":
    main()
