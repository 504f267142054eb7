"""Reading and writing files: images (TIFF, PNG, JPEG), medical volumes (NIfTI files, DICOM
series folders: see :mod:`napari_unet.io.medical`) for the CLI and training folders, and the
one atomic way every file napari-unet writes gets written.
"""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")  # what read_image reads
LOSSY_SUFFIXES = (".jpg", ".jpeg")  # never for labels: compression changes their values
MEDICAL_SUFFIXES = (".nii", ".nii.gz")  # NIfTI volumes; DICOM series are folders
LABELS_SUFFIX = "_masks.tif"  # output name for an image file: <name>_masks.tif
MEDICAL_LABELS_SUFFIX = "_seg.nii.gz"  # for a NIfTI file or DICOM series: <name>_seg.nii.gz


@dataclass(frozen=True)
class ImageFile:
    """An image read from a file, with what the file says about where its voxels lie."""

    data: np.ndarray  # the pixels; volumes in napari's (z, y, x) order
    spacing: tuple[float, ...] | None = None  # voxel size (z, y, x) in mm; None: the file doesn't say
    affine: np.ndarray | None = field(default=None, repr=False)  # NIfTI's 4x4 voxel->world; None: no geometry
    modality: str = ""  # "CT", "MR" ... as the file says ("" unknown); CT values are Hounsfield units
    name: str = ""  # a layer name: the file name without its suffixes, or the DICOM folder's name
    is_labels: bool = False  # the file says it holds labels (a NIfTI with intent "label", as napari-unet writes)


def is_medical(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a NIfTI file or a folder of DICOM slices (what read_image_file reads as a volume)."""
    from napari_unet.io.medical import is_dicom_folder, is_nifti

    return is_nifti(path) or is_dicom_folder(path)


def expand_inputs(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """Files named directly, by glob, or inside folders; plus the inputs that matched nothing.

    A DICOM series is a folder: a folder of DICOM slices is one input, and so is each
    such folder inside a folder or matched by a glob.
    """
    files: list[Path] = []
    missing: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if _readable(p))
            found = found or ([path] if is_medical(path) else [])  # a series' slices: the folder is the input
        elif path.exists():
            found = [path]
        else:
            found = sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file() or is_medical(p))
        if not found:
            missing.append(item)
        files.extend(found)
    return list(dict.fromkeys(files)), missing


def _readable(path: Path) -> bool:
    """Whether a folder's entry is an input: an image file, a NIfTI file or a DICOM series folder."""
    return path.suffix.lower() in IMAGE_SUFFIXES or is_medical(path)


def output_paths(inputs: list[Path], folder: Path, suffix: str | None = None) -> dict[Path, Path]:
    """One output file in ``folder`` per input, never the same for two inputs.

    ``<stem><suffix>`` where that is unique; inputs that would share it are told apart
    by their extension (``cell_png_masks.tif``), then by as many parent folders as it
    takes (``x_cell_png_masks.tif``, ``y_cell_png_masks.tif``). ``suffix=None`` picks it
    by input: ``_seg.nii.gz`` for NIfTI files and DICOM folders (``brain.nii.gz`` ->
    ``brain_seg.nii.gz``), ``_masks.tif`` for other images.
    """
    inputs = list(dict.fromkeys(Path(p) for p in inputs))
    suffixes = {p: suffix or (MEDICAL_LABELS_SUFFIX if is_medical(p) else LABELS_SUFFIX) for p in inputs}
    names = {p: _stem(p) for p in inputs}
    for level in range(max((len(p.parts) for p in inputs), default=0) + 1):
        seen: dict[str, list[Path]] = {}
        for p, name in names.items():
            seen.setdefault(f"{name}{suffixes[p]}".lower(), []).append(p)  # case-insensitive file systems
        clashes = [group for group in seen.values() if len(group) > 1]
        if not clashes:
            break
        for group in clashes:
            for p in group:
                parents = [part for part in p.parent.resolve().parts[1:]][-level:] if level else []
                names[p] = "_".join([*parents, _stem(p), _kind(p)])
    return {p: Path(folder) / f"{names[p]}{suffixes[p]}" for p in inputs}


def _stem(path: Path) -> str:
    """An input's name without its suffixes: ``brain`` for ``brain.nii.gz``, a DICOM folder's own name."""
    from napari_unet.io.medical import is_nifti, nifti_stem

    if path.is_dir():
        return path.name
    return nifti_stem(path) if is_nifti(path) else path.stem


def _kind(path: Path) -> str:
    """What tells two inputs of one name apart: ``png``, ``nii_gz``, ``dicom`` (a series folder)."""
    if path.is_dir():
        return "dicom"
    return path.name[len(_stem(path)):].lstrip(".").lower().replace(".", "_")


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
    """Read a TIFF (any bit depth, stacks), PNG/JPEG, NIfTI file or DICOM series folder into an array.

    Volumes come in napari's (z, y, x) order; :func:`read_image_file` gives their voxel
    spacing and affine too.

    Raises
    ------
    ValueError
        If the file cannot be read as an image.
    """
    return read_image_file(path).data


def read_image_file(path: str | os.PathLike) -> ImageFile:
    """Read an image with what its file says of its geometry (NIfTI, DICOM: spacing, affine).

    Raises
    ------
    ValueError
        If the file cannot be read as an image (the message says why and what to do).
    """
    path = Path(path)
    if is_medical(path):
        from napari_unet.io.medical import read_medical

        return read_medical(path)
    if path.is_dir():
        raise ValueError(f"{path}: a folder, and no DICOM series; give image files (TIFF/PNG/JPEG/NIfTI) "
                         "or a folder of one series' DICOM slices")
    return ImageFile(_read_plain(path), name=path.stem)


def _read_plain(path: Path) -> np.ndarray:
    """A TIFF, PNG or JPEG file's pixels."""
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


def write_labels(path: str | os.PathLike, labels: np.ndarray, source: ImageFile | None = None) -> None:
    """Write labels atomically (see :func:`atomic_path`): NIfTI for ``.nii``/``.nii.gz``, else a TIFF.

    Parameters
    ----------
    path : str or PathLike
        ``<name>.nii.gz`` / ``.nii``: a NIfTI label volume; any other name: an int32
        zlib-compressed TIFF.
    labels : ndarray
        Integer labels, volumes in (z, y, x) order.
    source : ImageFile, optional
        The image the labels were made from (:func:`read_image_file`): a NIfTI output
        takes its affine (or its spacing), so the labels lie on the image in any viewer.
    """
    from napari_unet.io.medical import is_nifti, write_nifti

    if is_nifti(path):
        source = source or ImageFile(labels)
        write_nifti(path, labels, affine=source.affine, spacing=source.spacing)
        return
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

