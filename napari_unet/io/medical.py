"""Medical volumes: NIfTI files (``.nii``, ``.nii.gz``) and DICOM series (a folder of slices).

nibabel and pydicom read and write the formats; this module turns what they give into
what napari and the core use: the voxels in napari's Z, Y, X order, the voxel spacing
(z, y, x) in mm, and the affine that places the voxels in the scanner's space.

The affine is always NIfTI's: a 4x4 matrix from voxel indices (i, j, k) = (x, y, z),
the order a NIfTI file stores them in, to RAS+ millimetres. A volume's array is that
file's array transposed to (z, y, x); nothing is resampled or flipped, so labels
written back with the same affine (:func:`write_nifti`) lie exactly on the image in any
viewer. A DICOM series gets the affine a NIfTI converter would give it (DICOM's LPS
patient coordinates turned to RAS). CT keeps its units: each slice's rescale slope and
intercept are applied, so the values are Hounsfield units.
"""

from __future__ import annotations

import gzip
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_unet.io.atomic import atomic_path

MEDICAL_SUFFIXES = (".nii", ".nii.gz")  # NIfTI volumes; DICOM series are folders
SPACING_TOLERANCE = 0.01  # slice steps this far (relative) from the usual one are uneven
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])  # DICOM patient space to NIfTI's world space


@dataclass(frozen=True)
class ImageFile:
    """An image read from a file, with what the file says about where its voxels lie."""

    data: np.ndarray  # the pixels; volumes in napari's (z, y, x) order
    spacing: tuple[float, ...] | None = None  # voxel size (z, y, x) in mm; None: the file doesn't say
    affine: np.ndarray | None = field(default=None, repr=False)  # NIfTI's 4x4 voxel->world; None: no geometry
    modality: str = ""  # "CT", "MR" ... as the file says ("" unknown); CT values are Hounsfield units
    name: str = ""  # a layer name: the file name without its suffixes, or the DICOM folder's name
    is_labels: bool = False  # the file says it holds labels (a NIfTI with intent "label", as napari-unet writes)


def is_nifti(path: str | os.PathLike) -> bool:
    """Whether ``path`` is named like a NIfTI file (``.nii`` or ``.nii.gz``)."""
    return str(path).lower().endswith(MEDICAL_SUFFIXES)


def nifti_stem(path: str | os.PathLike) -> str:
    """The file name without ``.nii`` / ``.nii.gz`` (``brain.nii.gz`` -> ``brain``)."""
    name = Path(path).name
    for suffix in sorted(MEDICAL_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


def is_dicom_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder holding at least one DICOM file (its own files only)."""
    path = Path(path)
    return path.is_dir() and any(_is_dicom_file(p) for p in path.iterdir())


def _is_dicom_file(path: Path) -> bool:
    """A file with DICOM's "DICM" preamble (pydicom's check); an unreadable file is not one."""
    from pydicom.misc import is_dicom

    try:
        return path.is_file() and is_dicom(path)
    except OSError:
        return False


def read_medical(path: str | os.PathLike, series: str | None = None) -> ImageFile:
    """Read a NIfTI file or a DICOM series folder (see :func:`read_nifti`, :func:`read_dicom`)."""
    if Path(path).is_dir():
        return read_dicom(path, series)
    return read_nifti(path)


def read_nifti(path: str | os.PathLike) -> ImageFile:
    """Read a NIfTI-1/2 file into a (z, y, x) array with its spacing and affine.

    A 4D file (x, y, z, t) becomes (t, z, y, x); a 2D one (x, y) a single plane
    (1, y, x). Scaled data (``scl_slope``/``scl_inter``) comes back scaled, as float.

    Parameters
    ----------
    path : str or PathLike
        A ``.nii`` or ``.nii.gz`` file.

    Returns
    -------
    ImageFile
        ``data`` in (z, y, x) order, ``spacing`` (z, y, x) in mm, ``affine`` (NIfTI's),
        ``modality`` ``"CT"`` when the values look like Hounsfield units, else ``""``;
        ``is_labels`` for integer data with the NIfTI intent "label" (:func:`write_nifti`'s).

    Raises
    ------
    ValueError
        If the file is missing, not a NIfTI file, truncated, or not a 2D-4D scalar image.
    """
    import nibabel as nib

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        img = nib.load(path)
        if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
            raise nib.filebasedimages.ImageFileError(f"a {type(img).__name__}, not NIfTI")
        data = np.asanyarray(img.dataobj)
    except Exception as exc:  # nibabel, gzip and numpy each have their own errors for a bad file
        raise ValueError(f"{path}: not a readable NIfTI file ({type(exc).__name__}: {exc}); "
                         "check that it is a complete .nii or .nii.gz file") from exc
    if data.ndim > 4 or data.ndim < 2:
        raise ValueError(f"{path}: a {data.ndim}D NIfTI image (shape {data.shape}); napari-unet reads 2D, 3D "
                         "and 4D (x, y, z, time) scalar images, not vector or multi-component ones")
    if data.ndim == 2:
        data = data[:, :, None]
    zooms = [float(f"{z:.7g}") for z in img.header.get_zooms()[:3]]  # float32 in the file: 0.7, not 0.69999999
    zooms += [1.0] * (3 - len(zooms))
    affine = np.asarray(img.affine, dtype=np.float64)
    return ImageFile(
        data=np.ascontiguousarray(data.T),  # (x, y, z[, t]) -> ([t,] z, y, x)
        spacing=(zooms[2], zooms[1], zooms[0]),
        affine=affine,
        modality="CT" if _looks_like_hounsfield(data) else "",
        name=nifti_stem(path),
        is_labels=data.dtype.kind in "iu" and img.header.get_intent()[0] == "label",
    )


def read_dicom(folder: str | os.PathLike, series: str | None = None) -> ImageFile:
    """Read a DICOM series (one slice per file, in one folder) into a (z, y, x) volume.

    Slices are ordered by their position along the slice normal (``ImagePositionPatient``
    against ``ImageOrientationPatient``), or by ``InstanceNumber`` where positions are
    missing. Each slice's ``RescaleSlope``/``RescaleIntercept`` is applied, so CT comes
    back in Hounsfield units (int16 when the values allow, else float32).

    Parameters
    ----------
    folder : str or PathLike
        The folder; files that are not DICOM (a DICOMDIR, notes) are skipped.
    series : str, optional
        Which series to read when the folder holds several: its ``SeriesInstanceUID``,
        or its ``SeriesNumber`` as text.

    Returns
    -------
    ImageFile
        ``data`` (z, y, x), ``spacing`` (z, y, x) in mm, ``affine`` (NIfTI's RAS+
        convention), ``modality`` from the files (``"CT"``, ``"MR"`` ...).

    Raises
    ------
    ValueError
        If the folder holds no DICOM image, several series (and ``series`` does not
        pick one), slices of different sizes or orientations, or slices with gaps or
        uneven spacing.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such folder")
    slices = _pick_series(folder, _read_headers(folder), series)
    slices = _sorted_slices(folder, slices)
    return _volume(folder, slices)


def write_nifti(path: str | os.PathLike, labels: np.ndarray, affine: np.ndarray | None = None,
                spacing: tuple[float, ...] | None = None) -> None:
    """Write a (z, y, x) label volume as NIfTI, atomically (see :func:`~napari_unet.io.atomic_path`).

    Parameters
    ----------
    path : str or PathLike
        ``.nii.gz`` (compressed) or ``.nii``.
    labels : ndarray
        Integer labels in napari's (z, y, x) order (a 2D array is one plane).
    affine : ndarray, optional
        The source image's 4x4 NIfTI affine (:attr:`ImageFile.affine`): the labels then
        lie on the image in any viewer. Without it the spacing makes a plain one.
    spacing : tuple of float, optional
        Voxel size (z, y, x) in mm, used only without ``affine`` (default 1 mm).

    Raises
    ------
    ValueError
        If the name is not ``.nii``/``.nii.gz``, the labels are not integers, or the affine
        is not 4x4.
    """
    import nibabel as nib

    path = Path(path)
    if not is_nifti(path):
        raise ValueError(f"{path}: a NIfTI file name ends in .nii.gz or .nii")
    labels = np.asarray(labels)
    if labels.dtype.kind not in "biu":
        raise ValueError(f"labels must be integers, got {labels.dtype}")
    if labels.ndim == 2:
        labels = labels[None]
    if labels.ndim != 3:
        raise ValueError(f"labels must be a (z, y, x) volume or one plane, got shape {labels.shape}")
    if affine is None:
        affine = spacing_affine(spacing or (1.0, 1.0, 1.0))
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4):
        raise ValueError(f"the affine must be 4x4, got shape {affine.shape}")
    img = nib.Nifti1Image(np.ascontiguousarray(labels.astype(_label_dtype(labels), copy=False).T), affine)
    img.header.set_xyzt_units("mm")
    img.header.set_intent("label")
    img.set_qform(affine, code=1)  # scanner coordinates, as the source image's
    img.set_sform(affine, code=1)
    data = img.to_bytes()  # nibabel names its compression by the file name; the temporary file has none
    with atomic_path(path) as tmp:
        if path.name.lower().endswith(".gz"):
            with gzip.open(tmp, "wb", compresslevel=6) as f:
                f.write(data)
        else:
            tmp.write_bytes(data)


def spacing_affine(spacing: tuple[float, ...], origin: tuple[float, ...] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """A NIfTI affine with no rotation: voxel size ``spacing`` (z, y, x), ``origin`` (z, y, x)."""
    spacing = tuple(float(s) for s in spacing)[-3:]
    spacing = (1.0,) * (3 - len(spacing)) + spacing
    origin = (tuple(float(o) for o in origin)[-3:] + (0.0,) * 3)[:3]
    affine = np.diag([spacing[2], spacing[1], spacing[0], 1.0])
    affine[:3, 3] = origin[::-1]
    return affine


def affine_spacing(affine: np.ndarray) -> tuple[float, float, float]:
    """The voxel size (z, y, x) an affine gives: the lengths of its i, j, k columns."""
    lengths = np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3], axis=0)
    return float(lengths[2]), float(lengths[1]), float(lengths[0])


def display_range(image: ImageFile) -> tuple[float, float]:
    """Contrast limits that show the anatomy: the 0.5-99.5 percentiles of CT's soft tissue and bone
    (over -200 HU: air and the blurred skin edge are black), or of any other image.
    """
    data = np.asarray(image.data)
    sample = data[tuple(slice(None, None, max(1, n // 64)) for n in data.shape)]  # ~64 steps per axis
    if image.modality == "CT" and (sample > -200).any():
        sample = sample[sample > -200]
    low, high = np.percentile(sample, (0.5, 99.5)) if sample.size else (0.0, 1.0)
    if high <= low:
        low, high = float(data.min()), float(data.max())
    return float(low), float(high if high > low else low + 1)


# ---------------------------------------------------------------------------------------------
# DICOM


def _read_headers(folder: Path) -> list:
    """Every DICOM image file's header in ``folder`` (pixels read later, series by series)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    found = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, EOFError, OSError):
            continue  # not DICOM, or not readable as such: skipped like any stray file
        if "Rows" in ds and "Columns" in ds:  # images only (not a DICOMDIR, a report)
            ds.filename = str(path)
            found.append(ds)
    if not found:
        raise ValueError(f"{folder}: no DICOM image files in this folder; open the folder that holds one "
                         "series' slices (a .dcm file per slice, often without extension)")
    return found


def _pick_series(folder: Path, slices: list, series: str | None) -> list:
    """The slices of one series: the only one, or the one ``series`` names."""
    groups: dict[str, list] = {}
    for ds in slices:
        groups.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append(ds)
    if series is not None:
        chosen = [uid for uid, group in groups.items()
                  if series in (uid, str(group[0].get("SeriesNumber", "")))]
        if not chosen:
            raise ValueError(f"{folder}: no series {series!r} here; the folder holds: {_describe(groups)}")
        return groups[chosen[0]]
    if len(groups) > 1:
        raise ValueError(
            f"{folder}: {len(groups)} DICOM series in one folder: {_describe(groups)}. Move each series' "
            "files into a folder of its own, or pick one in Python: "
            "napari_unet.io.read_dicom(folder, series='<SeriesInstanceUID or SeriesNumber>')")
    return next(iter(groups.values()))


def _describe(groups: dict[str, list]) -> str:
    """'series 3 "T1 axial" (40 slices, UID 1.2.3)' for each series, ';'-separated."""
    parts = []
    for uid, group in groups.items():
        ds = group[0]
        number = ds.get("SeriesNumber", "?")
        text = str(ds.get("SeriesDescription", "") or ds.get("Modality", ""))
        parts.append(f"series {number} {text!r} ({len(group)} slices, UID {uid or 'none'})")
    return "; ".join(parts)


def _orientation(ds) -> np.ndarray:
    """The slice's row and column direction cosines (DICOM patient space), 2 x 3."""
    cosines = ds.get("ImageOrientationPatient")
    if cosines is None:
        return np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # no geometry: axial, as the file order
    return np.asarray([float(c) for c in cosines]).reshape(2, 3)


def _sorted_slices(folder: Path, slices: list) -> list:
    """The slices in order along the slice normal; checks they form one regular volume."""
    shapes = Counter((int(ds.Rows), int(ds.Columns)) for ds in slices)
    if len(shapes) > 1:
        raise ValueError(f"{folder}: slices of different sizes in one series ({_counts(shapes)}); "
                         "the folder mixes images that are not one volume")
    orientations = {tuple(np.round(_orientation(ds).ravel(), 4)) for ds in slices}
    if len(orientations) > 1:
        raise ValueError(f"{folder}: slices with {len(orientations)} different orientations in one series "
                         "(a localizer or a reformat among the slices?); keep one orientation's files")
    if all("ImagePositionPatient" in ds for ds in slices):
        normal = np.cross(*_orientation(slices[0]))
        key = {id(ds): float(np.dot(normal, [float(v) for v in ds.ImagePositionPatient])) for ds in slices}
    else:
        key = {id(ds): float(ds.get("InstanceNumber", 0) or 0) for ds in slices}
    slices = sorted(slices, key=lambda ds: key[id(ds)])
    positions = np.array([key[id(ds)] for ds in slices])
    if len(slices) > 1:
        _check_steps(folder, np.diff(positions), slices)
    return slices


def _check_steps(folder: Path, steps: np.ndarray, slices: list) -> None:
    """Refuse duplicate slices, missing slices and uneven spacing, saying which."""
    if (np.abs(steps) < 1e-4).any():
        i = int(np.argmax(np.abs(steps) < 1e-4))
        raise ValueError(f"{folder}: two slices at the same position ({Path(slices[i].filename).name} and "
                         f"{Path(slices[i + 1].filename).name}): the folder holds a slice twice, or two "
                         "acquisitions of one series; keep one of each")
    step = float(np.median(steps))
    uneven = np.abs(steps - step) > SPACING_TOLERANCE * step
    if not uneven.any():
        return
    gaps = np.round(steps / step)
    missing = uneven & (gaps >= 2) & (np.abs(steps - gaps * step) <= SPACING_TOLERANCE * step)
    if missing.any():
        where = ", ".join(f"{int(gaps[i]) - 1} after {Path(slices[i].filename).name}" for i in np.flatnonzero(missing))
        raise ValueError(f"{folder}: missing slices ({where}; the slices are {step:g} mm apart elsewhere); "
                         "copy the whole series into the folder")
    raise ValueError(f"{folder}: uneven slice spacing (steps from {steps.min():g} to {steps.max():g} mm, "
                     f"usually {step:g} mm); napari-unet reads evenly spaced series only: resample it to even "
                     "spacing first (e.g. convert it to NIfTI with a resampling tool)")


def _volume(folder: Path, slices: list) -> ImageFile:
    """Read the pixels of sorted slices, in HU where rescaled, with the series' affine."""
    import pydicom

    planes, integral = [], True
    for ds in slices:
        try:
            pixels = pydicom.dcmread(ds.filename).pixel_array
        except Exception as exc:  # a missing codec, a truncated file: one message, naming the file
            raise ValueError(f"{ds.filename}: cannot read its pixels ({type(exc).__name__}: {exc})") from exc
        if pixels.ndim != 2:
            raise ValueError(f"{ds.filename}: a multi-frame or colour image (shape {pixels.shape}); "
                             "napari-unet reads series of single grey slices")
        slope, intercept = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
        integral &= slope.is_integer() and intercept.is_integer()
        planes.append(pixels.astype(np.float64) * slope + intercept if (slope, intercept) != (1, 0) else pixels)
    data = np.stack(planes)
    if integral and data.dtype.kind == "f" and data.min() >= -32768 and data.max() <= 32767:
        data = data.astype(np.int16)
    elif data.dtype.kind == "f":
        data = data.astype(np.float32)
    first = slices[0]
    row_spacing, col_spacing = (float(v) for v in first.get("PixelSpacing", (1.0, 1.0)))
    rows, cols = _orientation(first)
    if len(slices) > 1 and "ImagePositionPatient" in first:
        step = (np.asarray(slices[-1].ImagePositionPatient, float) - np.asarray(first.ImagePositionPatient, float))
        step /= len(slices) - 1
    else:
        thickness = float(first.get("SpacingBetweenSlices", 0) or first.get("SliceThickness", 1) or 1)
        step = np.cross(rows, cols) * thickness
    lps = np.eye(4)
    lps[:3, 0] = rows * col_spacing  # i: along a row, column index increasing
    lps[:3, 1] = cols * row_spacing  # j: down the columns, row index increasing
    lps[:3, 2] = step
    lps[:3, 3] = [float(v) for v in first.get("ImagePositionPatient", (0, 0, 0))]
    affine = LPS_TO_RAS @ lps
    return ImageFile(data=data, spacing=affine_spacing(affine), affine=affine,
                     modality=str(first.get("Modality", "")), name=folder.name)


def _counts(counter: Counter) -> str:
    return ", ".join(f"{n} of {r}x{c}" for (r, c), n in counter.most_common())


def _looks_like_hounsfield(data: np.ndarray) -> bool:
    """CT stored as NIfTI: signed values reaching air (about -1000 HU) and bone or soft tissue above 0."""
    if data.dtype.kind not in "if" or data.size == 0:
        return False
    sample = np.asarray(data[tuple(slice(None, None, max(1, n // 32)) for n in data.shape)])
    low, high = float(sample.min()), float(sample.max())
    return -3100 <= low <= -900 and high > 0  # air, or a scanner's padding value


def _label_dtype(labels: np.ndarray) -> np.dtype:
    """The smallest unsigned type that holds every label (NIfTI viewers read all of them)."""
    high = int(labels.max()) if labels.size else 0
    if labels.size and int(labels.min()) < 0:
        return np.dtype(np.int32)
    for dtype in (np.uint8, np.uint16, np.uint32):
        if high <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.int64)
