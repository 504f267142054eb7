"""A validation patch held out of a user's annotation, so fine-tuning can measure itself.

With enough annotated objects, a strip at one end of the most annotated image is taken
out of training (its pixels leave the annotated mask) and scored with AP@0.5 while the
network learns; the best-scoring weights are kept. The strip is cut where it crosses
the fewest labelled pixels, and objects it would cut stay in training, so every
validation object is whole and never seen by the loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from napari_unet.inference.images import to_planes
from napari_unet.labels import fraction_inside
from napari_unet.training.evaluation import ValImage

MIN_OBJECTS = 16  # annotated objects needed before any are held out (fewer: all are trained on)
FRACTION = 0.25  # share of the annotated objects held out (at least MIN_VAL_OBJECTS)
MIN_VAL_OBJECTS = 3  # AP on fewer objects is too coarse to pick weights by
CONTEXT = 32  # pixels of image around the patch given to the network (not scored)


@dataclass(frozen=True)
class Holdout:
    """The annotation split into what is trained on and what is scored."""

    annotated: list[np.ndarray | None]  # training masks per image, the patch removed
    val: list[ValImage]  # the patch (with context), scored on its held-out pixels
    n_objects: int  # objects in the patch


def annotated_ids(labels: np.ndarray, annotated: np.ndarray | None) -> np.ndarray:
    """Ids of the objects with annotated pixels."""
    ids = np.unique(labels if annotated is None else labels[annotated])
    return ids[ids > 0]


def hold_out(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    annotated: Sequence[np.ndarray | None],
    *,
    channels: int = 1,
    channel_axis: int | None = None,
    min_objects: int = MIN_OBJECTS,
) -> Holdout | None:
    """Take a validation strip out of the annotation; None when there are too few objects.

    Parameters
    ----------
    images, labels, annotated
        As given to :func:`napari_unet.finetune.segmentation.finetune_iter` (2D, optional channel axis).
    channels, channel_axis
        The model's image channels and the images' channel axis.
    min_objects
        Annotated objects needed in all; the strip takes about :data:`FRACTION` of them
        from the image that has the most.
    """
    counts = [annotated_ids(lab, ann).size for lab, ann in zip(labels, annotated)]
    if sum(counts) < min_objects:
        return None
    i = int(np.argmax(counts))
    lab = np.asarray(labels[i])
    ann = np.ones(lab.shape, bool) if annotated[i] is None else np.asarray(annotated[i], bool)
    k = min(max(MIN_VAL_OBJECTS, round(FRACTION * sum(counts))), counts[i] // 2)  # half stays in training
    if k < MIN_VAL_OBJECTS:
        return None
    strip = _strip(lab, ann, annotated_ids(lab, ann), k)
    if strip is None:
        return None
    val_mask, n_val = strip
    train = [None if a is None else np.asarray(a, bool) for a in annotated]
    train[i] = ann & ~val_mask
    box = tuple(slice(max(0, int(ix.min()) - CONTEXT), int(ix.max()) + 1 + CONTEXT) for ix in np.nonzero(val_mask))
    chw = to_planes(images[i], channels, channel_axis)[0][0]
    val = ValImage(chw[(slice(None), *box)], lab[box], val_mask[box], channel_axis=0)
    return Holdout(train, [val], n_val)


def _strip(lab: np.ndarray, ann: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, int] | None:
    """The held-out pixels at the far end of the annotation's longer axis, and their object count."""
    rows, cols = np.nonzero(ann)
    axis = 1 if np.ptp(cols) >= np.ptp(rows) else 0
    centres = np.array(ndi.center_of_mass(np.ones(lab.shape), lab, ids))[:, axis]
    order = np.sort(centres)
    lo, hi = int(order[-k - 1]), int(np.ceil(order[-k]))  # cut between the k-th last object and the rest
    inside = np.where(ann, lab > 0, False).sum(axis=1 - axis)  # labelled pixels across each line
    cut = lo + int(np.argmin(inside[lo : hi + 1]))
    coords = np.arange(lab.shape[axis])
    beyond = (coords >= cut)[None, :] if axis == 1 else (coords >= cut)[:, None]
    strip = ann & beyond
    whole = fraction_inside(lab, strip) == 1.0
    whole[0] = True
    crossing = np.unique(lab[strip & ~whole[lab]])
    val_mask = strip & ~np.isin(lab, crossing[crossing > 0])
    n_val = annotated_ids(lab, val_mask).size
    if n_val < MIN_VAL_OBJECTS:
        return None
    return val_mask, n_val
