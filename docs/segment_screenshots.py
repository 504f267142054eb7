"""Take the screenshots of docs/segmenting.md from the real app (under Xvfb when headless).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/segment_screenshots.py [--model FILE]

Writes docs/images/segment-*.png. Each scene drives the Segment widget the way a user
would (press Segment, paint, change a setting) and saves the window or the dock.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("NAPARI_APPLICATION_GUI_NOTIFICATION_LEVEL", "error")  # no toasts in pictures

import napari  # noqa: E402
import numpy as np  # noqa: E402
from qtpy.QtWidgets import QDockWidget  # noqa: E402

from napari_unet._qt.demo import settle, wait_until  # noqa: E402
from napari_unet._qt.segment.widget import SegmentWidget  # noqa: E402
from napari_unet.synth.sample import nuclei_sample  # noqa: E402

IMAGES = Path(__file__).resolve().parent / "images"
SIZE = (1500, 950)


def new_viewer(model: Path | None):
    viewer = napari.Viewer(title="napari-unet")
    viewer.window.resize(*SIZE)
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "Segment")
    if model is not None:
        widget.model.load(model)
    return viewer, widget


def segment(widget: SegmentWidget) -> None:
    widget.segment()
    assert wait_until(lambda: not widget.running, 1800), "segmentation did not finish"
    settle()


def save_window(viewer, name: str) -> None:
    viewer.reset_view()
    settle()
    viewer.screenshot(str(IMAGES / name), canvas_only=False)
    print("wrote", name)


def save_dock(widget, name: str) -> None:
    dock = widget
    while dock is not None and not isinstance(dock, QDockWidget):
        dock = dock.parentWidget()
    settle()
    (dock or widget).grab().save(str(IMAGES / name))
    print("wrote", name)


def scene_result(model) -> None:
    viewer, widget = new_viewer(model)
    viewer.open_sample("napari-unet", "nuclei")
    segment(widget)
    save_window(viewer, "segment-result.png")

    # an edit, then Segment again: the masks are replaced in one undoable step
    masks = viewer.layers[-1]
    yy, xx = np.nonzero(np.ones((40, 40)))
    masks.data_setitem((yy + 100, xx + 100), int(masks.data.max()) + 1)
    segment(widget)
    widget.advanced.expand(animate=False)
    save_dock(widget, "segment-replaced.png")
    viewer.close()


def scene_running(model) -> None:
    viewer, widget = new_viewer(model)
    viewer.add_image(nuclei_sample((2048, 2048), seed=5).image, name="large image")
    widget.segment()
    wait_until(lambda: widget.bar.value() >= 2, 600)
    save_window(viewer, "segment-running.png")
    widget.cancel()
    wait_until(lambda: not widget.running, 600)
    viewer.close()


def scene_stack(model) -> None:
    viewer, widget = new_viewer(model)
    stack = np.stack([nuclei_sample((512, 512), seed=s).image for s in (11, 12, 13, 14)])
    viewer.add_image(stack, name="stack", scale=(2.0, 0.5, 0.5))
    viewer.dims.set_current_step(0, 2)
    segment(widget)
    save_window(viewer, "segment-stack.png")
    viewer.close()


def scene_not_listed(model) -> None:
    viewer, widget = new_viewer(model)
    viewer.open_sample("napari-unet", "nuclei")
    viewer.add_image(np.zeros((2, 3, 4, 64, 64), np.uint16), name="time-lapse 5D")
    save_dock(widget, "segment-not-listed.png")
    viewer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="model file (default: the shipped model)")
    parser.add_argument("scenes", nargs="*", default=["result", "running", "stack", "not_listed"])
    args = parser.parse_args()
    IMAGES.mkdir(exist_ok=True)
    for name in args.scenes:
        globals()[f"scene_{name}"](args.model)


if __name__ == "__main__":
    main()
