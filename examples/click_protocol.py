"""The standard simulated user clicks on the nuclei of a generated image: clicks per object.

    python examples/click_protocol.py [--objects N]

The first click goes to each object's centre and every next one to the middle of the
largest error, as in the interactive-segmentation literature; NoC@85 is how many clicks
it took to reach IoU 0.85 (20 when never reached).
"""

from __future__ import annotations

import argparse

import numpy as np

import napari_unet as nu
from napari_unet.clicks.protocol import clicks_to_reach, interact
from napari_unet.clicks.segmenter import ClickSegmenter, load_click_model
from napari_unet.synth.sample import nuclei_sample


def main(argv: list[str] | None = None) -> int:
    """Click on ``--objects`` nuclei; print each object's clicks and the mean NoC@85."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10, help="objects to click on (default 10)")
    args = parser.parse_args(argv)
    sample = nuclei_sample((256, 256), seed=7)
    segmenter = ClickSegmenter(sample.image, load_click_model(), segmentation_model=nu.load_model(), device="cpu")
    ids = [i for i in np.unique(sample.labels) if i][: args.objects]
    counts = []
    for i in ids:
        ious = interact(segmenter, sample.labels == i, stop_iou=0.85)
        counts.append(clicks_to_reach(ious, 0.85))
        print(f"object {i}: IoU {ious[-1]:.2f} after {len(ious)} click(s)")
    print(f"NoC@85 over {len(counts)} objects: {np.mean(counts):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
