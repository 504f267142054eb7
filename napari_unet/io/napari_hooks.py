"""napari's reader and writer contributions for medical files (see napari.yaml).

npe2 calls these with plain data: a path in, layer-data tuples ``(data, kwargs, type)``
out; a path, an array and the layer's attributes in, the written paths out. No Qt here.

- Reader: a NIfTI file or a DICOM series folder becomes an image layer with the voxel
  spacing as ``scale``, the affine in ``metadata["affine"]`` and contrast limits that
  show the anatomy (CT stays in Hounsfield units); a NIfTI label file, a Labels layer.
- Writer: a Labels layer becomes a NIfTI label volume with the source image's affine
  (the layer's ``metadata["affine"]``, which napari-unet's layers copy from their image),
  else an affine made of the layer's scale and translate.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from napari_unet.io.files import ImageFile, is_medical, read_image_file
from napari_unet.io.medical import display_range, spacing_affine, write_nifti

AFFINE = "affine"  # metadata key: the NIfTI affine of the file a layer came from
SOURCE = "source_file"  # metadata key: the path the layer was read from


def get_reader(path: str | list[str]):
    """npe2 reader hook: :func:`read_layers` for one NIfTI file or DICOM folder, else None."""
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    if len(paths) != 1 or not is_medical(paths[0]):
        return None  # a stack of files, or not ours: napari asks the next reader
    return read_layers


def read_layers(path: str | list[str]) -> list[tuple[np.ndarray, dict[str, Any], str]]:
    """One image layer from a NIfTI file or DICOM series folder (a Labels layer for NIfTI labels).

    Returns
    -------
    list of tuple
        ``[(data, kwargs, "image")]``: data in (z, y, x) order (``(t, z, y, x)`` for 4D),
        ``scale`` the voxel spacing in mm, ``metadata`` the affine, spacing, modality and
        source path, named after the file. A NIfTI file whose header says it holds labels
        (integers, intent "label", as :func:`write_labels_layer` writes) gives
        ``"labels"``, so a saved segmentation opens as one.
    """
    path = path[0] if isinstance(path, list) else path
    image = read_image_file(path)
    if image.is_labels:  # labels saved by napari-unet (or any tool that marks them): a Labels layer again
        data, kwargs, _ = image_layer(image, str(path))
        return [(data, {k: kwargs[k] for k in ("name", "scale", "metadata")}, "labels")]
    return [image_layer(image, str(path))]


def image_layer(image: ImageFile, source: str = "") -> tuple[np.ndarray, dict[str, Any], str]:
    """An image read from a file (or made like one) as napari's layer-data tuple.

    ``scale`` is the voxel spacing (1 on a leading time axis), ``metadata`` holds the
    affine, spacing, modality and ``source`` path, contrast limits show the anatomy.
    """
    spacing = tuple(image.spacing or (1.0, 1.0, 1.0))
    kwargs = {
        "name": image.name,
        "scale": (1.0,) * (image.data.ndim - len(spacing)) + spacing,
        "colormap": "gray",
        "contrast_limits": display_range(image),
        "metadata": {AFFINE: image.affine, "spacing": spacing, "modality": image.modality, SOURCE: source},
    }
    return image.data, kwargs, "image"


def write_labels_layer(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """npe2 writer hook: one Labels layer to ``.nii.gz``/``.nii`` (see :func:`write_nifti`).

    The affine is the layer's ``metadata["affine"]`` when it has one (labels made on an
    image read from a NIfTI/DICOM file carry their image's), else the layer's scale and
    translate over its last three axes.

    Returns
    -------
    list of str
        The path written.
    """
    labels = np.asarray(data)
    if labels.ndim > 3:
        raise ValueError(f"a NIfTI label volume has at most 3 axes (z, y, x); this layer has shape {labels.shape}: "
                         "save one time point, or save as TIFF")
    affine = (meta.get("metadata") or {}).get(AFFINE)
    if affine is None:
        scale = tuple(meta.get("scale") or (1.0,) * labels.ndim)
        translate = tuple(meta.get("translate") or (0.0,) * labels.ndim)
        affine = spacing_affine(scale[-3:], translate[-3:])
    write_nifti(path, labels, affine=affine)
    return [str(path)]
