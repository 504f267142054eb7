"""Take the screenshots of docs/scale.md's "In napari" from the real app (under Xvfb when headless).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/scale_screenshots.py

Writes a 4096² generated nuclei image as chunked zarr in a temporary folder, opens it with
File › Open (napari's own zarr reader: a lazy dask layer, never loaded whole), presses
Segment in the Segment widget and saves the window twice: docs/images/scale-running.png
while the blocks are being segmented (the progress bar counts them) and
docs/images/scale-done.png with the zarr-backed masks layer, zoomed on a block border.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("NAPARI_APPLICATION_GUI_NOTIFICATION_LEVEL", "error")  # no toasts in pictures

import napari  # noqa: E402
import zarr  # noqa: E402
from segment_screenshots import SIZE, save_window  # noqa: E402

from napari_unet._qt.demo import settle, wait_until  # noqa: E402
from napari_unet.synth.sample import nuclei_sample  # noqa: E402

EDGE = 4096


def write_image(path: Path) -> None:
    """A generated nuclei image, EDGE² uint16 in 512² chunks: one field, so nuclei lie across
    the block borders (at 2048 px) as in a real scan.
    """
    z = zarr.create_array(str(path), shape=(EDGE, EDGE), chunks=(512, 512), dtype="uint16", zarr_format=2)
    z[...] = nuclei_sample((EDGE, EDGE), seed=3).image


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="napari-unet-scale-"))
    path = folder / "slide.zarr"
    write_image(path)
    viewer = napari.Viewer(title="napari-unet")
    viewer.window.resize(*SIZE)
    (layer,) = viewer.open(str(path))
    print("opened", layer.name, type(layer.data).__name__)
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "Segment")
    widget.image.set_current(layer)
    widget.segment()
    assert wait_until(lambda: "blocks" in widget.bar.format() and widget.bar.value() >= 2, 900), \
        "no block finished"
    save_window(viewer, "scale-running.png")
    assert wait_until(lambda: not widget.running, 1800), "segmentation did not finish"
    settle()
    print(widget.status.text())
    viewer.scene.camera.center = (0, 2048, 2048)  # where four blocks meet
    viewer.scene.camera.zoom = 1.2
    settle()
    viewer.screenshot(str(Path(__file__).resolve().parent / "images" / "scale-done.png"), canvas_only=False)
    print("wrote scale-done.png")
    viewer.close()


if __name__ == "__main__":
    main()
