"""What counts as annotated in a user's corrections, and what a refresh may overwrite.

A user corrects some objects and leaves the rest as the model drew them; fine-tuning
learns only from what they checked (the edited objects, grown by a margin) and a refresh
with the new model writes only outside it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from napari_unet.clicks.batches import MIN_PIXELS
from napari_unet.labels import fraction_inside, object_sizes
from napari_unet.training.holdout import annotated_ids


def edited_region(labels: np.ndarray, edited: np.ndarray, margin: int = 8) -> np.ndarray:
    """Where a user has checked the labels: every object they touched, grown by ``margin``.

    Parameters
    ----------
    labels
        The corrected instance labels (2D).
    edited
        Bool mask of pixels the user painted, erased or clicked.
    margin
        Pixels around the touched objects that count as checked background.
    """
    edited = np.asarray(edited, bool)
    if edited.shape != labels.shape:
        raise ValueError(f"edited mask {edited.shape} does not match labels {labels.shape}")
    touched = np.unique(labels[edited])
    region = edited | np.isin(labels, touched[touched > 0])
    if margin > 0 and region.any():
        region = ndi.binary_dilation(region, iterations=margin)
    return region


def count_objects(labels: Sequence[np.ndarray], annotated: Sequence[np.ndarray | None]) -> int:
    """Objects that have annotated pixels: what the network is learning from."""
    return sum(annotated_ids(lab, ann).size for lab, ann in zip(labels, annotated))


def clickable_objects(labels: Sequence[np.ndarray], annotated: Sequence[np.ndarray | None]) -> int:
    """Objects annotated in full (and not tiny): the ones simulated clicks can be put on."""
    total = 0
    for lab, ann in zip(labels, annotated):
        lab = np.asarray(lab)
        whole = object_sizes(lab) >= MIN_PIXELS
        if ann is not None:
            whole &= fraction_inside(lab, ann) == 1.0
        total += int(whole[1:].sum())
    return total


def merge_outside(current: np.ndarray, new: np.ndarray, protected: np.ndarray, max_id: int | None = None) -> np.ndarray:
    """``new`` predictions wherever the user's labels are not protected, as whole objects.

    Current objects that reach into ``protected`` are kept whole (never cut). A new object
    that would overlap them is dropped, and what its pixels hold now stays (no hole where
    nothing better came). New ids start above ``max_id`` (default: the largest current id;
    pass the whole stack's for one plane).
    """
    touching = np.unique(current[protected])
    keep = protected | np.isin(current, touching[touching > 0])
    blocked = np.unique(new[keep])
    dropped = np.isin(new, blocked[blocked > 0])
    keep |= dropped
    offset = max_id if max_id is not None else int(current.max(initial=0))
    placed = np.where(new > 0, new.astype(np.int64) + offset, 0)
    return np.where(keep, current, placed)  # int64: the caller checks the ids fit the layer
