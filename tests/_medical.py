"""Medical test files written by the field's own libraries: CT series with pydicom, NIfTI with nibabel."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def ct_volume(shape=(6, 24, 20), seed: int = 0) -> np.ndarray:
    """A small CT-like volume in Hounsfield units: air around a water body holding a bone-like ball."""
    z, y, x = np.indices(shape, dtype=np.float32)
    centre = (np.array(shape) - 1) / 2
    r = np.sqrt(((y - centre[1]) / (shape[1] / 2.4)) ** 2 + ((x - centre[2]) / (shape[2] / 2.4)) ** 2)
    hu = np.full(shape, -1000.0, np.float32)
    hu[r < 1] = 40
    ball = ((z - centre[0]) / 2) ** 2 + ((y - centre[1]) / 4) ** 2 + ((x - centre[2]) / 4) ** 2 < 1
    hu[ball] = 700
    hu += np.random.default_rng(seed).normal(0, 10, shape)
    return np.clip(np.round(hu), -1024, 3000).astype(np.int16)  # what the series' -1024 intercept can store


def write_ct_series(folder: Path, hu: np.ndarray, spacing=(2.5, 0.7, 0.8), origin=(-10.0, -20.0, 30.0), *,
                    series_number: int = 1, description: str = "CT abdomen", shuffle: bool = True,
                    orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0), series_uid: str | None = None,
                    positions: list[float] | None = None) -> list[Path]:
    """Write ``hu`` (z, y, x) as one DICOM file per slice, stored as unsigned values with a -1024 intercept.

    Files get names that do not follow the slice order (``shuffle``), as scanners' often
    do not; slice z lies at ``origin + positions[z] * normal`` (default ``z * spacing[0]``).
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    study_uid = generate_uid()
    rows, cols = np.asarray(orientation[:3], float), np.asarray(orientation[3:], float)
    normal = np.cross(rows, cols)
    positions = [z * spacing[0] for z in range(len(hu))] if positions is None else positions
    order = np.random.default_rng(series_number).permutation(len(hu)) if shuffle else np.arange(len(hu))
    paths = []
    for z, pos in enumerate(positions):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.SeriesDescription, ds.SeriesNumber = "CT", description, series_number
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.InstanceNumber = z + 1
        ds.ImageOrientationPatient = [float(v) for v in orientation]
        ds.ImagePositionPatient = [float(v) for v in np.asarray(origin, float) + pos * normal]
        ds.PixelSpacing = [float(spacing[1]), float(spacing[2])]
        ds.SliceThickness = float(spacing[0])
        ds.Rows, ds.Columns = hu.shape[1:]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.PixelData = (hu[z].astype(np.int32) + 1024).astype(np.uint16).tobytes()
        path = folder / f"IM{series_number:02d}{order[z]:04d}"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def write_nifti_volume(path: Path, zyx: np.ndarray, affine: np.ndarray) -> Path:
    """Write a (z, y, x) array as NIfTI with nibabel (stored x, y, z as the format wants)."""
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.ascontiguousarray(zyx.T), affine), path)
    return path
