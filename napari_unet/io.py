"""Reading and writing files: images (TIFF, PNG, JPEG) for the CLI and training folders, and
the one atomic way every file napari-unet writes gets written.
"""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
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
    """Write int32 labels as a compressed TIFF, atomically (see :func:`atomic_path`)."""
    import tifffile

    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, labels.astype(np.int32, copy=False), compression="zlib")


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary file beside ``path`` to write; it becomes ``path`` when the block ends.

    The data is flushed to disk and renamed over ``path`` in one step, so a crash or a
    kill never leaves a half-written file where a good one was; if the block raises,
    the temporary file is removed and ``path`` is left as it was. The file gets an
    ordinary file's permissions (the umask's), not the temporary file's private 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    """The process's file-creation mask (read without changing it where the OS allows)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere: the classic set-and-restore
    os.umask(mask)
    return mask

