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


def output_paths(inputs: list[Path], folder: Path, suffix: str = "_masks.tif") -> dict[Path, Path]:
    """One output file in ``folder`` per input, never the same for two inputs.

    ``<stem><suffix>`` where that is unique; inputs that would share it are told apart
    by their extension (``cell_png_masks.tif``), then by as many parent folders as it
    takes (``x_cell_png_masks.tif``, ``y_cell_png_masks.tif``).
    """
    inputs = list(dict.fromkeys(Path(p) for p in inputs))
    names = {p: p.stem for p in inputs}
    for level in range(max((len(p.parts) for p in inputs), default=0) + 1):
        seen: dict[str, list[Path]] = {}
        for p, name in names.items():
            seen.setdefault(name.lower(), []).append(p)  # case-insensitive file systems
        clashes = [group for group in seen.values() if len(group) > 1]
        if not clashes:
            break
        for group in clashes:
            for p in group:
                parents = [part for part in p.parent.resolve().parts[1:]][-level:] if level else []
                names[p] = "_".join([*parents, p.stem, p.suffix.lstrip(".").lower()])
    return {p: Path(folder) / f"{names[p]}{suffix}" for p in inputs}


def file_layout(image: np.ndarray, n_channels: int) -> tuple[np.ndarray, int | None, str]:
    """How an image read from a file feeds a model of ``n_channels`` image channels.

    A last axis of 2-4 entries holds channels (a file stores grey + alpha, RGB or RGBA
    that way): grey + alpha gives its grey channel to a 1-channel model, RGB(A) is
    averaged to grey by the core. Returns the image, its channel axis (None: no channel
    axis) and a note for the user ("" when nothing was changed or guessed).
    """
    if image.ndim != 3 or image.shape[-1] not in (2, 3, 4):
        return image, None, ""
    kind = {2: "grey + alpha", 3: "RGB", 4: "RGBA"}[image.shape[-1]]
    if n_channels != 1:
        return image, -1, f"{kind} channels"
    if image.shape[-1] == 2:
        return image[..., 0], None, "grey + alpha: alpha dropped"
    return image, -1, f"{kind}: {'alpha dropped, ' if image.shape[-1] == 4 else ''}averaged to grey"


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

