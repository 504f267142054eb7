"""What counts as annotated in a user's corrections, and what a refresh may overwrite.

A user corrects some objects and leaves the rest as the model drew them; fine-tuning
learns only from what they checked (the edited objects, grown by a margin) and a refresh
with the new model writes only outside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


def merge_outside(current: np.ndarray, new: np.ndarray, protected: np.ndarray, max_id: int | None = None,
                  min_size: int = 0) -> np.ndarray:
    """``new`` predictions wherever the user's labels are not protected, as whole objects.

    Current objects that reach into ``protected`` are kept whole (never cut). A new object
    that would overlap them is dropped, and what its pixels hold now stays (no hole where
    nothing better came). New ids start above ``max_id`` (default: the largest current id;
    pass the whole stack's for one plane). No object the merge makes or cuts ends under
    ``min_size`` pixels (the model's minimum size, :func:`refresh_min_size`): such specks
    become background; objects left exactly as they were stay, whatever their size.
    """
    touching = np.unique(current[protected])
    keep = protected | np.isin(current, touching[touching > 0])
    blocked = np.unique(new[keep])
    dropped = np.isin(new, blocked[blocked > 0])
    keep |= dropped
    offset = max_id if max_id is not None else int(current.max(initial=0))
    placed = np.where(new > 0, new.astype(np.int64) + offset, 0)
    merged = np.where(keep, current, placed)  # int64: the caller checks the ids fit the layer
    if min_size > 1:
        sizes = object_sizes(merged)
        small = np.flatnonzero(sizes < min_size)
        small = small[small > 0]
        if small.size:
            as_before = object_sizes(current, minlength=sizes.size)[: sizes.size] == sizes  # ids kept whole
            specks = small[~as_before[small] | (small > offset)]
            merged = np.where(np.isin(merged, specks), 0, merged)
    return merged


def refresh_min_size(labels: np.ndarray, min_size: int, min_relative_size: float) -> int:
    """The smallest object a refresh may add to ``labels``: the model's ``min_size`` (px),
    or ``min_relative_size`` of the median object there, whichever is larger (the same
    rule as segmentation's :class:`~napari_unet.inference.instances.InstanceParams`).
    """
    sizes = object_sizes(np.asarray(labels))[1:]
    sizes = sizes[sizes > 0]
    relative = min_relative_size * float(np.median(sizes)) if sizes.size else 0.0
    return max(int(min_size), int(np.ceil(relative)))


@dataclass(frozen=True)
class Changes:
    """What a refresh did to a label image, in objects."""

    new: int = 0  # objects that match none before (IoU < 0.5)
    removed: int = 0  # objects before that match none after
    changed: int = 0  # matched objects whose outline moved
    planes: int = 0  # planes with any change

    def __add__(self, other: Changes) -> Changes:
        return Changes(self.new + other.new, self.removed + other.removed, self.changed + other.changed,
                       self.planes + other.planes)

    @property
    def any(self) -> bool:
        """Whether any object was added, removed or changed."""
        return bool(self.new or self.removed or self.changed)

    def words(self) -> str:
        """"+23 new, −4 removed, 31 changed, in 20 planes" ("no object changed" when none)."""
        if not self.any:
            return "no object changed"
        where = f", in {self.planes} plane{'s' * (self.planes != 1)}" if self.planes else ""
        return f"+{self.new} new, −{self.removed} removed, {self.changed} changed{where}"


def object_changes(before: np.ndarray, after: np.ndarray, plane: bool = False) -> Changes:
    """Objects new, removed and changed from ``before`` to ``after`` (one 2D label image).

    Objects pair up when they overlap with IoU ≥ 0.5 (at most one partner each, so the
    pairing is unique); a pair whose pixels differ is "changed". ``plane``: count the
    image as a plane (``planes`` = 1 when anything changed).
    """
    before, after = np.asarray(before), np.asarray(after)
    if np.array_equal(before, after):
        return Changes()
    both = (before > 0) & (after > 0)
    pairs, overlap = np.unique(np.stack([before[both], after[both]]).astype(np.int64), axis=1, return_counts=True)
    size_b, size_a = object_sizes(before), object_sizes(after)
    iou = overlap / (size_b[pairs[0]] + size_a[pairs[1]] - overlap)
    matched = iou >= 0.5
    b_ids, a_ids = pairs[0][matched], pairs[1][matched]
    n_before, n_after = int((size_b[1:] > 0).sum()), int((size_a[1:] > 0).sum())
    changed = int(((overlap[matched] != size_b[b_ids]) | (overlap[matched] != size_a[a_ids])).sum())
    out = Changes(n_after - b_ids.size, n_before - b_ids.size, changed)
    return Changes(out.new, out.removed, out.changed, int(plane and out.any))
