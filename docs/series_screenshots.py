"""Take the time-series screenshot of docs/volumes.md from the real app (under Xvfb when headless).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/series_screenshots.py

Writes docs/images/volume-series.png: three generated confocal-like volumes as one 4D layer
(T, Z, Y, X), all time points segmented from the Segment widget into 3D objects, the window
with the widget's dock (its 'time points' row and Advanced › side planes).
"""

from __future__ import annotations

import os

os.environ.setdefault("NAPARI_APPLICATION_GUI_NOTIFICATION_LEVEL", "error")  # no toasts in pictures

import napari  # noqa: E402
import numpy as np  # noqa: E402
from segment_screenshots import SIZE, save_window  # noqa: E402

from napari_unet._qt.demo import settle, wait_until  # noqa: E402
from napari_unet.synth.volumes import synth_volumes  # noqa: E402


def main() -> None:
    volumes = synth_volumes(3, 5002, (24, 160, 160))
    series = np.stack([v.image for v in volumes])
    viewer = napari.Viewer(title="napari-unet")
    viewer.window.resize(*SIZE)
    viewer.add_image(series, name="series", scale=(1, *volumes[0].spacing), colormap="gray")
    viewer.dims.set_current_step(0, 1)
    viewer.dims.set_current_step(1, 12)
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "Segment")
    widget.advanced.expand(animate=False)
    widget.segment()
    assert wait_until(lambda: not widget.running, 1800), "segmentation did not finish"
    settle()
    print(widget.status.text())
    save_window(viewer, "volume-series.png")
    viewer.close()


if __name__ == "__main__":
    main()
