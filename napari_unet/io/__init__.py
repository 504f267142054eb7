"""Readers and writers: TIFF/PNG/JPEG images and label files, and the one atomic way every
file napari-unet writes gets written. NIfTI/DICOM and zarr/OME-Zarr live beside them here;
napari's reader and writer contributions call these functions.
"""

from napari_unet.io.files import (
    IMAGE_SUFFIXES,
    LOSSY_SUFFIXES,
    atomic_path,
    expand_inputs,
    file_layout,
    output_paths,
    read_image,
    write_labels,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "LOSSY_SUFFIXES",
    "atomic_path",
    "expand_inputs",
    "file_layout",
    "output_paths",
    "read_image",
    "write_labels",
]
