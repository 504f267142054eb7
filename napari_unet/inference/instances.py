"""From per-class probabilities to labels: instances by seeded watershed, or a class map."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import watershed

from napari_unet.inference.predict import QUANTUM, as_float
from napari_unet.inference.zoom import labels_to_shape, unzoom
from napari_unet.labels import drop_small, fill_holes


@dataclass(frozen=True)
class InstanceParams:
    """Post-processing settings; changing them needs no new network pass."""

    interior_threshold: float = 0.5  # P(interior) above which a pixel seeds an object
    foreground_threshold: float = 0.5  # 1 - P(background) above which a pixel belongs to one
    min_size: int = 10  # objects with fewer pixels are removed
    min_relative_size: float = 0.15  # ... and those under this fraction of the plane's median object area
    fill_holes: bool = True  # holes inside the foreground join the surrounding object


def model_params(card) -> InstanceParams:
    """The post-processing settings tuned for a model (its card's ``postprocess``), the
    defaults for any setting the card does not name.
    """
    known = {f.name for f in fields(InstanceParams)}
    return replace(InstanceParams(), **{k: v for k, v in card.postprocess.items() if k in known})


def instances_from_probabilities(
    probabilities: np.ndarray,
    params: InstanceParams = InstanceParams(),
    task: str = "instances",
    shape: tuple[int, ...] | None = None,
) -> np.ndarray:
    """Turn (n_classes, *spatial) probabilities into int32 labels of shape ``shape``.

    For ``task="instances"`` (classes background / interior / boundary) touching objects
    are separated by a watershed seeded from the interiors; stacks are processed plane by
    plane with ids unique across the stack. Any other task gives the arg-max class map.

    ``shape`` (default: the probabilities' own) is the image's spatial shape when the
    network saw it resampled (``zoom``): objects are then found at the pixels the network
    saw, where neighbours that touch are still apart, and brought to the image's pixels
    with :func:`labels_to_shape`; ``min_size`` counts the image's pixels. uint8
    probabilities (0-255, :func:`~napari_unet.inference.predict.quantize`) are read as 0-1.
    """
    probs = as_float(probabilities)
    shape = tuple(probs.shape[1:]) if shape is None else tuple(shape)
    if probs.ndim - 1 != len(shape) or probs.shape[1:-2] != shape[:-2]:
        raise ValueError(f"probabilities of spatial shape {probs.shape[1:]} cannot make labels of shape {shape}")
    if task != "instances":
        return labels_to_shape(np.argmax(probs, axis=0).astype(np.int32), shape, renumber=False)
    if probs.shape[0] != 3:
        raise ValueError(
            f"instance post-processing needs 3 classes (background, interior, boundary), "
            f"got {probs.shape[0]}"
        )
    area = np.prod(probs.shape[-2:]) / np.prod(shape[-2:])  # network pixels per image pixel
    params = replace(params, min_size=max(1, int(round(params.min_size * area))))
    if probs.ndim == 3:
        return labels_to_shape(_instances_2d(probs, params), shape)
    labels = np.zeros(shape, np.int32)
    offset = 0
    for z in range(probs.shape[1]):
        plane = labels_to_shape(_instances_2d(probs[:, z], params), shape[1:])
        labels[z] = np.where(plane > 0, plane + offset, 0)
        offset += int(plane.max())
    return labels


def _instances_2d(probs: np.ndarray, params: InstanceParams) -> np.ndarray:
    foreground = probs[0] < 1.0 - params.foreground_threshold
    if params.fill_holes:
        foreground = fill_holes(foreground)
    blobs, n_blobs = ndi.label(foreground)
    if n_blobs == 0:
        return np.zeros(probs.shape[1:], np.int32)
    markers, n_seeds = ndi.label((probs[1] > params.interior_threshold) & foreground)
    # how many seeds each foreground blob holds
    pairs = np.unique(blobs[markers > 0].astype(np.int64) * (n_seeds + 1) + markers[markers > 0])
    seeds_per_blob = np.bincount(pairs // (n_seeds + 1), minlength=n_blobs + 1)
    # a blob with one seed (or none: the network saw no interior) is one object as it is;
    # only blobs with several seeds are split, by flooding from the seeds over
    # "less interior-like" pixels
    split = seeds_per_blob > 1
    split[0] = False
    boxes = ndi.find_objects(blobs)
    labels = blobs.copy()
    next_id = n_blobs + 1
    for blob in np.flatnonzero(split):
        # each blob in its own bounding box: the flood touches no pixel outside it
        box = boxes[blob - 1]
        region = blobs[box] == blob
        flooded = watershed(-probs[1][box], np.where(region, markers[box], 0), mask=region)
        ids = np.unique(flooded[region])
        lut = np.zeros(int(ids.max()) + 1, np.int32)
        lut[ids] = np.arange(next_id, next_id + len(ids), dtype=np.int32)
        labels[box][region] = lut[flooded[region]]
        next_id += len(ids)
    return drop_small(labels, params.min_size, params.min_relative_size)


def instances_3d(probabilities: np.ndarray, params: InstanceParams = InstanceParams(),
                 spacing: tuple[float, float, float] = (1.0, 1.0, 1.0), shape: tuple[int, ...] | None = None,
                 out: np.ndarray | None = None) -> np.ndarray:
    """3D objects from (3, Z, Y, X) probabilities: one id per object through its planes.

    The interiors the network found seed the objects, joined across planes where they
    touch; a seeded watershed over the distance to the background, measured in physical
    units (``spacing``, Z Y X), gives every foreground voxel to its nearest seed, so the
    split between touching nuclei follows their shape however coarse Z is. Foreground
    with no seed is one object per connected piece. Objects whose largest cross-section
    is under ``min_size`` pixels, or whose volume is under ``min_relative_size`` of the
    median object's, are removed; ids are 1..n.

    The probabilities are float (0-1) or uint8 (0-255, as
    :func:`~napari_unet.inference.predict.quantize` stores them), at the volume's voxels or,
    with ``shape`` (Z, Y, X), at a zoom in Y and X: each plane is then brought to the
    volume's pixels as it is thresholded. The labels (int32 of the volume's shape) are
    written into ``out`` when given.

    Each connected piece of foreground is split in its own bounding box (the distance
    to the background and the flood stay inside it), so memory beyond the labels and one
    mask is that of the largest piece, not of the volume: a 200x1024x1024 stack needs no
    4-8 GB volume-wide distance map.
    """
    probs = np.asarray(probabilities)
    if probs.ndim != 4 or probs.shape[0] != 3:
        raise ValueError(f"3D instances need (3, Z, Y, X) probabilities, got shape {probs.shape}")
    shape = tuple(probs.shape[1:]) if shape is None else tuple(shape)
    zoomed = shape != tuple(probs.shape[1:])
    # the foreground is written into the labels' own array and labelled in place: no mask of the volume
    labels = np.empty(shape, np.int32) if out is None else out
    interior = np.empty(shape, bool) if zoomed else probs[1]  # seeds are read box by box
    stored = np.float32 if zoomed else probs.dtype  # a zoomed plane is read as floats
    below = _level(1.0 - params.foreground_threshold, stored)
    above = _level(params.interior_threshold, stored)
    for z in range(shape[0]):  # plane by plane: no float copy of the volume
        plane = unzoom(as_float(probs[:2, z]), shape[1:]) if zoomed else probs[:2, z]
        foreground = plane[0] < below
        if zoomed:
            np.greater(plane[1], above, out=interior[z])
        labels[z] = fill_holes(foreground) if params.fill_holes else foreground
    if zoomed:
        above = False  # the interiors are a mask already
    n_blobs = ndi.label(labels, output=labels)
    # the objects are written as negative ids into the pieces' own array: a piece's box
    # may overlap pieces still to be split, which keep their positive numbers until then
    next_id = 1
    for blob, box in enumerate(ndi.find_objects(labels, max_label=n_blobs), start=1):
        if box is None:
            continue
        box = tuple(slice(max(0, s.start - 1), min(n, s.stop + 1)) for s, n in zip(box, labels.shape))
        piece = labels[box]
        region = piece == blob
        seeds, n_seeds = ndi.label((interior[box] > above) & region)
        if n_seeds <= 1:  # one object as it is
            piece[region] = -next_id
            next_id += 1
            continue
        # the nearest background lies inside the box grown by a voxel, as in the whole volume
        distance = ndi.distance_transform_edt(piece != 0, sampling=spacing)
        flooded = watershed(-distance, seeds, mask=region)
        piece[region] = -(flooded[region] + (next_id - 1))
        next_id += n_seeds
    np.negative(labels, out=labels)
    if not labels.any():
        return labels
    return _drop_small_3d(labels, params.min_size, params.min_relative_size)


def _level(threshold: float, dtype: np.dtype) -> float:
    """A probability threshold in the units of probabilities stored as ``dtype``."""
    return threshold * QUANTUM if dtype == np.uint8 else threshold


def _drop_small_3d(labels: np.ndarray, min_size: int, min_relative_size: float) -> np.ndarray:
    """:func:`drop_small` for volumes: the size test is on an object's largest cross-section
    (pixels, as in 2D), the relative test on its volume. Renumbers ``labels`` in place.
    """
    n = int(labels.max()) + 1
    per_plane = np.stack([np.bincount(plane.ravel(), minlength=n) for plane in labels])
    section, volume = per_plane.max(axis=0), per_plane.sum(axis=0)
    keep = section >= max(min_size, 1)
    keep[0] = False
    if min_relative_size > 0 and keep.any():
        keep &= volume >= min_relative_size * np.median(volume[keep])
    lut = np.zeros(n, np.int32)
    lut[keep] = np.arange(1, keep.sum() + 1, dtype=np.int32)
    for plane in labels:  # plane by plane: no second volume of labels
        plane[...] = lut[plane]
    return labels
