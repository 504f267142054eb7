"""Images that belong together: flag a training image whose size or intensities differ a lot.

Fine-tuning on a few images learns their look; an unrelated image (another stain, another
scale) mixed in pulls the model away from the rest. :func:`odd_ones_out` compares each
image with the others and says, in words, how an outlier differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SIZE_RATIO = 4.0  # an image with this many times the pixels of the others (or this fraction) is flagged
SAMPLE = 2**16  # pixels sampled per image for its intensity statistics


@dataclass(frozen=True)
class ImageStats:
    """What an image is compared on: its plane size and its intensity distribution."""

    pixels: int  # pixels per 2D plane
    median: float  # median intensity
    spread: float  # 1st to 99th percentile


def image_stats(data: np.ndarray, plane_shape: tuple[int, ...]) -> ImageStats:
    """Size (``plane_shape``: its 2D planes' Y, X) and intensity statistics of an image (any
    layout, channels and planes pooled) on a sample of its pixels.
    """
    data = np.asarray(data)
    values = data.ravel()[:: max(1, data.size // SAMPLE)].astype(np.float64)
    low, median, high = np.percentile(values, (1, 50, 99)) if values.size else (0.0, 0.0, 0.0)
    return ImageStats(int(np.prod(plane_shape[-2:])), float(median), float(high - low))


def odd_ones_out(stats: Sequence[ImageStats]) -> list[str]:
    """For each image, how it differs a lot from the others ("" when it does not).

    Flagged: a plane with :data:`SIZE_RATIO` times the pixels of the group's median (or
    that fraction); a median intensity farther from the group's than its typical spread;
    a spread 4x wider or narrower. With two images each is compared with the other (both
    are flagged when they differ); with one nothing is.
    """
    out = []
    for i, s in enumerate(stats):
        others = [o for j, o in enumerate(stats) if j != i]
        if not others:
            out.append("")
            continue
        # the group's median (itself included, so one outlier cannot drag the reference
        # of the rest towards it); with two images, the other one
        others = others if len(stats) == 2 else list(stats)
        reasons = []
        size = s.pixels / max(np.median([o.pixels for o in others]), 1)
        if size >= SIZE_RATIO or size <= 1 / SIZE_RATIO:
            reasons.append(f"{size:.2g}x the size of the others")
        median, spread = np.median([o.median for o in others]), np.median([o.spread for o in others])
        if abs(s.median - median) > max(spread, 1e-12):
            reasons.append(f"median intensity {s.median:.4g}, the others {median:.4g}")
        elif spread > 0 and not 1 / SIZE_RATIO < s.spread / spread < SIZE_RATIO:
            reasons.append(f"intensity range {s.spread:.4g}, the others {spread:.4g}")
        out.append("; ".join(reasons))
    return out
