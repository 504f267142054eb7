"""Reading and writing files: images (TIFF, PNG, JPEG) and medical volumes (NIfTI files, DICOM
series folders: see :mod:`napari_unet.io.medical`) for the CLI and training folders; which
inputs a folder or glob names, and what each one's output is called. Every file is written
through :func:`~napari_unet.io.atomic.atomic_path`.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import numpy as np

from napari_unet.io.atomic import atomic_path
from napari_unet.io.medical import (
    MEDICAL_SUFFIXES,
    ImageFile,
    is_dicom_folder,
    is_nifti,
    nifti_stem,
    read_medical,
    write_nifti,
)

__all__ = ["IMAGE_SUFFIXES", "LOSSY_SUFFIXES", "MEDICAL_SUFFIXES", "ImageFile", "atomic_path", "expand_inputs",
           "file_layout", "is_medical", "output_paths", "read_image", "read_image_file", "write_labels"]

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")  # what read_image reads
LOSSY_SUFFIXES = (".jpg", ".jpeg")  # never for labels: compression changes their values
LABELS_SUFFIX = "_masks.tif"  # output name for an image file: <name>_masks.tif
MEDICAL_LABELS_SUFFIX = "_seg.nii.gz"  # for a NIfTI file or DICOM series: <name>_seg.nii.gz


def is_medical(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a NIfTI file or a folder of DICOM slices (what read_image_file reads as a volume)."""
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
    if is_nifti(path):
        source = source or ImageFile(labels)
        write_nifti(path, labels, affine=source.affine, spacing=source.spacing)
        return
    import tifffile

    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, labels.astype(np.int32, copy=False), compression="zlib")
