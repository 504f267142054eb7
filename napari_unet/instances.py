"""From per-class probabilities to labels: instances by seeded watershed, or a class map."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import watershed


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
    defaults for any setting the card does not name."""
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
    with :func:`labels_to_shape`; ``min_size`` counts the image's pixels.
    """
    probs = np.asarray(probabilities)
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


def labels_to_shape(labels: np.ndarray, shape: tuple[int, ...], renumber: bool = True) -> np.ndarray:
    """Resample a 2D label image to ``shape`` (Y, X), renumbered 1..n (``renumber``; off for class maps).

    Each output pixel takes the label most of it covers, counted on a k × k grid of
    samples (k odd, at least the scale factor; ties go to the central sample), so
    objects keep their outlines when a magnified result is brought back; a larger
    ``shape`` is the nearest sample.
    """
    labels = np.asarray(labels)
    if tuple(labels.shape) == tuple(shape):
        return labels
    factor = [n / m for n, m in zip(labels.shape, shape)]
    k = max(1, int(np.ceil(max(factor) - 1e-6)))
    k += 1 - k % 2
    offsets = [k // 2] + [j for j in range(k) if j != k // 2]  # the centre first
    rows = [_sample_index(shape[0], factor[0], (j + 0.5) / k, labels.shape[0]) for j in offsets]
    cols = [_sample_index(shape[1], factor[1], (i + 0.5) / k, labels.shape[1]) for i in offsets]
    out = np.empty(shape, labels.dtype)
    for top in range(0, shape[0], CHUNK_ROWS):  # k² samples of a band of rows at a time
        band = slice(top, top + CHUNK_ROWS)
        out[band] = _majority([labels[r[band, None], c[None, :]] for r in rows for c in cols])
    return _drop_small(out, 1) if renumber else out


CHUNK_ROWS = 256


def _majority(samples: list[np.ndarray]) -> np.ndarray:
    """Per pixel, the value most of ``samples`` hold; ties go to the earliest sample."""
    if len(samples) == 1:
        return samples[0]
    votes = [np.ones(samples[0].shape, np.int16) for _ in samples]
    for i, a in enumerate(samples):
        for j in range(i + 1, len(samples)):
            same = a == samples[j]
            votes[i] += same
            votes[j] += same
    best, most = samples[0].copy(), votes[0]
    for candidate, n in zip(samples[1:], votes[1:]):
        wins = n > most
        best[wins] = candidate[wins]
        most = np.maximum(most, n)
    return best


def _sample_index(n: int, factor: float, offset: float, limit: int) -> np.ndarray:
    """Indices into an axis ``factor`` times longer, ``offset`` (0-1) into each of ``n`` pixels."""
    return np.minimum(((np.arange(n) + offset) * factor).astype(np.intp), limit - 1)


def _instances_2d(probs: np.ndarray, params: InstanceParams) -> np.ndarray:
    foreground = probs[0] < 1.0 - params.foreground_threshold
    if params.fill_holes:
        foreground = ndi.binary_fill_holes(foreground)
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
    return _drop_small(labels, params.min_size, params.min_relative_size)


def _drop_small(labels: np.ndarray, min_size: int, min_relative_size: float = 0.0) -> np.ndarray:
    """Remove objects under ``min_size`` pixels or under ``min_relative_size`` times the
    median object area (fragments and specks beside real objects), and renumber 1..n."""
    sizes = np.bincount(labels.ravel())
    keep = sizes >= max(min_size, 1)
    keep[0] = False
    if min_relative_size > 0 and keep.any():
        keep &= sizes >= min_relative_size * np.median(sizes[keep])
    lut = np.zeros(len(sizes), np.int32)
    lut[keep] = np.arange(1, keep.sum() + 1, dtype=np.int32)
    return lut[labels]
