"""Screenshots of the New model widget for docs/new-task.md, from the real app.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/train_screenshots.py [--steps 150]

Opens the Abdomen MR phantom from File › Open Sample, keeps its labels on five slices (the
"painted" ones), opens New model from the Plugins menu and trains the default network for
``--steps`` (a step budget: the same pictures on a busy machine). Writes
docs/images/new-task-painted.png (a painted slice and the form), new-task-training.png (the
live loss plot and held-out score), new-task-class-map.png (the class map on a slice nobody
painted) and new-task-3d.png (the class map in 3D, the body class transparent).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("NAPARI_APPLICATION_GUI_NOTIFICATION_LEVEL", "error")  # no toasts in pictures

import napari  # noqa: E402
import numpy as np  # noqa: E402
from napari.utils.colormaps import DirectLabelColormap  # noqa: E402

from napari_unet._qt.demo import settle, wait_until  # noqa: E402
from napari_unet._qt.train.job import warm_up_training  # noqa: E402

IMAGES = Path(__file__).resolve().parent / "images"
IMAGE = "abdomen MR (synthetic)"
PAINTED = [6, 13, 20, 26, 33]  # five slices of the 40, as bench_new_task paints them
UNPAINTED = 16  # a slice nobody painted, for the class map


def save(viewer, name: str) -> None:
    settle(0.5)
    viewer.window._qt_window.grab().save(str(IMAGES / name))
    print(f"saved docs/images/{name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=150, help="the training budget")
    args = parser.parse_args()

    viewer = napari.Viewer(title="napari-unet")
    window = viewer.window._qt_window
    window.showNormal()
    window.resize(1500, 950)
    viewer.open_sample("napari-unet", "phantom_mr")
    labels = viewer.layers[f"{IMAGE} classes"]
    painted = np.zeros_like(labels.data)
    painted[PAINTED] = labels.data[PAINTED]
    labels.data = painted
    labels.name = "painted"
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "New model")
    widget.unit.setCurrentText("steps")
    widget.budget.setValue(args.steps)
    viewer.dims.set_current_step(0, 20)
    viewer.layers.selection.active = labels
    settle(3.0)
    wait_until(lambda: not warm_up_training().is_alive(), 120)
    viewer.reset_view()
    save(viewer, "new-task-painted.png")

    widget.run_button.click()
    wait_until(lambda: len(widget.plot.steps) > args.steps * 0.6 and widget.score.text(), args.steps * 10)
    save(viewer, "new-task-training.png")

    answer = f"{IMAGE} classes (new model)"
    wait_until(lambda: not widget.running and answer in viewer.layers, args.steps * 10 + 600)
    labels.visible = False
    viewer.dims.set_current_step(0, UNPAINTED)
    viewer.layers.selection.active = viewer.layers[answer]
    save(viewer, "new-task-class-map.png")

    viewer.layers[IMAGE].visible = False
    classes = viewer.layers[answer]  # the body drawn transparent, so the organ and fluid inside show
    colours = {v: classes.colormap.map(v) for v in (2, 3, 4)}
    classes.colormap = DirectLabelColormap(color_dict={None: (0, 0, 0, 0), 0: (0, 0, 0, 0), 1: (0, 0, 0, 0),
                                                       **colours})
    viewer.dims.ndisplay = 3
    viewer.scene.camera.angles = (-10, 30, 75)
    viewer.reset_view()
    settle(1.0)
    save(viewer, "new-task-3d.png")
    print(widget.score.text())
    print(widget.status.text())
    viewer.close()


if __name__ == "__main__":
    main()
