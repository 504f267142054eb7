"""Readers and writers: TIFF/PNG/JPEG images and label files (:mod:`.files`), NIfTI files and
DICOM series (:mod:`.medical`), and the one atomic way every file napari-unet writes gets
written (:mod:`.atomic`).
napari's reader and writer contributions (:mod:`.napari_hooks`) call these functions.
"""

from napari_unet.io.files import (
    IMAGE_SUFFIXES,
    LOSSY_SUFFIXES,
    MEDICAL_SUFFIXES,
    ImageFile,
    atomic_path,
    expand_inputs,
    file_layout,
    is_medical,
    output_paths,
    read_image,
    read_image_file,
    write_labels,
)
from napari_unet.io.medical import read_dicom, read_nifti, write_nifti

__all__ = [
    "IMAGE_SUFFIXES",
    "LOSSY_SUFFIXES",
    "MEDICAL_SUFFIXES",
    "ImageFile",
    "atomic_path",
    "expand_inputs",
    "file_layout",
    "is_medical",
    "output_paths",
    "read_dicom",
    "read_image",
    "read_image_file",
    "read_nifti",
    "write_labels",
    "write_nifti",
]
