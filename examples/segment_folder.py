"""Segment every image of a folder with the shipped nuclei model, no viewer needed.

    python examples/segment_folder.py [FOLDER] [-o OUT]

Without a folder, three generated nuclei images are written to a temporary one first.
Masks are written as ``<name>_masks.tif`` (what ``napari-unet segment`` writes too).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import tifffile

import napari_unet as nu
from napari_unet.io import expand_inputs, read_image, write_labels
from napari_unet.synth.sample import nuclei_sample


def main(argv: list[str] | None = None) -> int:
    """Segment the folder's images; print one line per image."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, help="images to segment (default: generated ones)")
    parser.add_argument("-o", "--output", type=Path, help="where the masks go (default: beside the images)")
    parser.add_argument("--size", type=int, default=256, help="edge of the generated images (default 256)")
    args = parser.parse_args(argv)
    folder = args.folder
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="napari-unet-example-"))
        for seed in range(3):
            tifffile.imwrite(folder / f"nuclei_{seed}.tif", nuclei_sample((args.size, args.size), seed=seed).image)
    output = args.output or folder
    output.mkdir(parents=True, exist_ok=True)
    model = nu.load_model()  # once, for every image
    files, _ = expand_inputs([str(folder)])
    for path in files:
        labels = nu.segment(read_image(path), model)
        write_labels(output / f"{path.stem}_masks.tif", labels)
        print(f"{path.name}: {labels.max()} objects")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
