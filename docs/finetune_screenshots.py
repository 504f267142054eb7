"""Make the screenshots of docs/finetuning.md (run under Xvfb: `bash run.sh bench ../docs/finetune_screenshots`).

A domain-shifted synthetic image (big, faint, textured nuclei) is segmented with the
shipped model; the left half is corrected the way a user would (erase, then draw
each nucleus as a polygon); then Fine-tune runs with its defaults. The last picture shows
the review of the refresh (taking the new model first if the check kept the old one).
``--scene checked``: the real nuclei image of the benchmarks (benchmarks/real_data.py), its left
half corrected the same way (73 nuclei, enough for the check on held-out squares), then
Fine-tune with its defaults (finetune-checked.png).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("NAPARI_APPLICATION_GUI_NOTIFICATION_LEVEL", "error")  # no toasts over the picture

OUT = Path(__file__).resolve().parent / "images"


def correct(masks, truth: np.ndarray, box: tuple[int, int, int, int]) -> int:
    """Erase ``box`` (y0, x0, y1, x1) and draw the true nuclei centred in it as polygons."""
    from skimage.measure import find_contours, regionprops

    y0, x0, y1, x1 = box
    masks.paint_polygon(np.array([[y0, x0], [y0, x1], [y1, x1], [y1, x0]]), 0)
    n = 0
    for region in regionprops(truth):
        cy, cx = region.centroid
        if y0 <= cy < y1 and x0 <= cx < x1:
            contour = max(find_contours(np.pad(truth == region.label, 1), 0.5), key=len) - 1
            masks.paint_polygon(contour[::3], int(masks.data.max()) + 1)
            n += 1
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="model file (default: the shipped model)")
    parser.add_argument("--seconds", type=int, default=60, help="fine-tuning budget (the CPU default)")
    parser.add_argument("--scene", choices=("synthetic", "checked"), default="synthetic")
    args = parser.parse_args()
    if args.scene == "checked":
        return checked(args)

    import napari

    from napari_unet._qt.demo import settle, wait_until
    from napari_unet.synth.config import SynthConfig
    from napari_unet.synth.images import synth_image

    OUT.mkdir(exist_ok=True)
    sample = synth_image(100, (512, 512), SynthConfig().shifted())
    viewer = napari.Viewer(title="napari-unet: fine-tuning")
    viewer.window.resize(1500, 950)
    viewer.add_image(sample.image, name="cells")
    _, segment = viewer.window.add_plugin_dock_widget("napari-unet", "Segment")
    _, tune = viewer.window.add_plugin_dock_widget("napari-unet", "Fine-tune")
    if args.model:
        segment.model.load(args.model)
    viewer.reset_view()
    segment.segment()
    wait_until(lambda: not segment.running)
    masks = viewer.layers["cells masks"]
    n = correct(masks, sample.labels, (0, 0, 512, 256))
    print(f"corrected {n} nuclei in the left half")
    tune.settings.budget.setValue(args.seconds)
    settle()
    viewer.reset_view()
    settle()
    viewer.screenshot(str(OUT / "finetune-corrected.png"), canvas_only=False)

    tune.run_button.click()
    wait_until(lambda: not tune.running, args.seconds * 0.6)
    viewer.screenshot(str(OUT / "finetune-training.png"), canvas_only=False)
    wait_until(lambda: not tune.running)
    settle()
    print(tune.status.text())
    viewer.screenshot(str(OUT / "finetune-done.png"), canvas_only=False)
    if not tune.use_new_button.isHidden():  # the check kept the old model: take the new one, as a user may
        tune.use_new_button.click()
        wait_until(lambda: not tune.running)
        settle()
        print(tune.status.text())
    tune.review.go(0)
    settle()
    viewer.screenshot(str(OUT / "finetune-review.png"), canvas_only=False)
    print(f"saved the screenshots in {OUT}")
    viewer.close()


def checked(args) -> None:
    """The real image, its left half corrected, fine-tuned: the check on held-out squares."""
    import sys

    import napari
    import torch  # noqa: F401  (loaded: the docks build at once, not behind a loading place-holder)

    from napari_unet._qt.demo import settle, wait_until

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from real_data import real_nuclei_2d

    image, truth = real_nuclei_2d()
    viewer = napari.Viewer(title="napari-unet: fine-tuning")
    viewer.window.resize(1500, 950)
    viewer.add_image(image, name="nuclei")
    _, segment = viewer.window.add_plugin_dock_widget("napari-unet", "Segment")
    _, tune = viewer.window.add_plugin_dock_widget("napari-unet", "Fine-tune")
    segment.segment()
    wait_until(lambda: not segment.running)
    n = correct(viewer.layers["nuclei masks"], truth, (0, 0, 512, 256))
    print(f"corrected {n} nuclei in the left half")
    tune.settings.budget.setValue(args.seconds)
    tune.run_button.click()
    wait_until(lambda: not tune.running)
    settle()
    viewer.reset_view()
    settle()
    print(tune.status.text())
    viewer.screenshot(str(OUT / "finetune-checked.png"), canvas_only=False)
    viewer.close()


if __name__ == "__main__":
    main()
