"""Reading and writing image files (TIFF, PNG, JPEG) for the CLI and training folders."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")  # what read_image reads
LOSSY_SUFFIXES = (".jpg", ".jpeg")  # never for labels: compression changes their values


def expand_inputs(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """Files named directly, by glob, or inside folders; plus the inputs that matched nothing."""
    files: list[Path] = []
    missing: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.exists():
            found = [path]
        else:
            found = sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file())
        if not found:
            missing.append(item)
        files.extend(found)
    return list(dict.fromkeys(files)), missing


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a TIFF (any bit depth, stacks) or PNG/JPEG file into an array.

    Raises
    ------
    ValueError
        If the file cannot be read as an image.
    """
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            return tifffile.imread(path)
        import imageio.v3 as iio

        return np.asarray(iio.imread(path))
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except Exception as exc:  # every reader has its own errors; one message for the user
        raise ValueError(f"{path}: not a readable image ({type(exc).__name__}: {exc})") from exc


def write_labels(path: str | os.PathLike, labels: np.ndarray) -> None:
    """Write int32 labels as a compressed TIFF, atomically (temp file + rename)."""
    import tifffile

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tifffile.imwrite(tmp, labels.astype(np.int32, copy=False), compression="zlib")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
