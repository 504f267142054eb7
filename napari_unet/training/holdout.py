"""Squares held out of a user's annotation, so fine-tuning can judge itself.

With enough annotated objects the annotation is cut into squares a few objects wide and
split in two halves (:func:`halves`), alternate squares along a sweep over it, so that
each half covers every part of it rather than one end. Fine-tuning trains one model
without each half and scores it there: every corrected object is then judged by a model
that never saw it (a two-fold cross-validation, as nnU-Net judges its folds). A held-out
square is its annotated background and the objects centred in it, whole, so the check
counts both the objects the model finds and the ones it makes up. On a real image a strip
at one end held 13-17 objects of one look and could not tell a better model from a worse
one; a quarter of the squares held 17 objects, two or three of them wrong, and kept better
models about half of the time. A margin around each square is kept from the loss too, so
it never sees a held-out outline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from napari_unet.inference.images import to_planes
from napari_unet.labels import fraction_inside, median_diameter
from napari_unet.training.evaluation import ValImage
from napari_unet.training.metrics import iou_pairs

MIN_OBJECTS = 16  # annotated objects needed before any are held out (fewer: all are trained on)
MIN_VAL_OBJECTS = 3  # fewer held-out objects cannot judge a model
MIN_SQUARES = 12  # squares shrink until the annotation holds this many (~6 spread over each half)
TILE = 4.0  # a held-out square's side, in median object diameters: a few objects and their background
CONTEXT = 32  # pixels of image around the held-out squares given to the network (not scored)
MARGIN = 4  # pixels around a held-out square also kept from the loss (its outlines' other side)


@dataclass(frozen=True)
class Holdout:
    """The annotation split into what is trained on and what is scored."""

    annotated: list[np.ndarray | None]  # training masks per image, the held-out squares removed
    val: list[ValImage]  # patches around the held-out squares (with context), scored on them
    n_objects: int  # objects held out


def annotated_ids(labels: np.ndarray, annotated: np.ndarray | None) -> np.ndarray:
    """Ids of the objects with annotated pixels."""
    ids = np.unique(labels if annotated is None else labels[annotated])
    return ids[ids > 0]


def halves(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    annotated: Sequence[np.ndarray | None],
    *,
    channels: int = 1,
    channel_axis: int | None = None,
    min_objects: int = MIN_OBJECTS,
    wrong: Sequence[np.ndarray | None] | None = None,
) -> tuple[Holdout, Holdout] | None:
    """The annotation split in two halves of squares spread over it, each held out in turn;
    None when there are too few objects.

    Parameters
    ----------
    images, labels, annotated
        As given to :func:`napari_unet.finetune.segmentation.finetune_iter` (2D, optional channel axis).
    channels, channel_axis
        The model's image channels and the images' channel axis.
    min_objects
        Annotated objects needed in all.
    wrong
        Optional bool masks per image of where the model being fine-tuned is wrong (the
        objects it misses and makes up, :func:`wrong_pixels`): the squares holding some and
        the others are shared out apart, so each half holds its share of the errors the user
        corrected (a check of squares the old model got right can only tie).

    Notes
    -----
    The annotation is cut into squares :data:`TILE` object diameters wide; in the order of a
    sweep over the annotation (rows of squares read left to right and right to left in
    turn), the odd squares make one half and the even ones the other. A held-out square is
    its annotated background and the objects whose centres lie in it, whole (objects not
    annotated in full stay in training). Each :class:`Holdout` trains on the rest.
    """
    masks = [np.ones(np.shape(lab), bool) if a is None else np.asarray(a, bool) for lab, a in zip(labels, annotated)]
    labels = [np.asarray(lab) for lab in labels]
    total = sum(annotated_ids(lab, ann).size for lab, ann in zip(labels, masks))
    if total < min_objects:
        return None
    # a few objects wide, but small enough for a small annotation to give some squares to spread
    area = sum(int(ann.sum()) for ann in masks)
    side = int(round(min(TILE * (median_diameter(labels, masks) or 16), np.sqrt(area / MIN_SQUARES))))
    side = max(side, 16)
    squares = [(i, sq) for i, (lab, ann) in enumerate(zip(labels, masks)) for sq in _squares(lab, ann, side)]
    if wrong is None:
        groups = [squares]
    else:
        missed = [None if w is None else np.unique(lab[np.asarray(w, bool)]) for lab, w in zip(labels, wrong)]
        flagged = [_holds_errors(sq, labels[i], wrong[i], missed[i]) for i, sq in squares]
        groups = [[s for s, f in zip(squares, flagged) if f], [s for s, f in zip(squares, flagged) if not f]]
    # alternate squares of each group; the group's odd one out goes to the half with fewer objects
    picked: list[list[tuple[int, _Square]]] = [[], []]
    for group in groups:
        first = int(sum(sq.n_objects for _, sq in picked[1]) < sum(sq.n_objects for _, sq in picked[0]))
        for j, square in enumerate(group):
            picked[(j + first) % 2].append(square)
    out = tuple(_held(images, labels, annotated, masks, half, channels, channel_axis) for half in picked)
    return out if min(h.n_objects for h in out) >= MIN_VAL_OBJECTS else None


def _held(images, labels, annotated, masks, picked, channels: int, channel_axis: int | None) -> Holdout:
    """The :class:`Holdout` of the squares ``picked`` ((image index, square) pairs)."""
    train, val = list(annotated), []
    for i in sorted({i for i, _ in picked}):
        held = np.zeros(labels[i].shape, bool)
        for j, sq in picked:
            if j == i:
                held[sq.box] |= masks[i][sq.box] & (labels[i][sq.box] == 0)  # its background
                held |= np.isin(labels[i], sq.ids)  # its objects, whole
        train[i] = masks[i] & ~ndi.binary_dilation(held, iterations=MARGIN)
        chw = to_planes(images[i], channels, channel_axis)[0][0]
        val += [ValImage(chw[(slice(None), *box)], labels[i][box], held[box] & near[box], channel_axis=0)
                for box, near in _patches(held)]
    return Holdout(train, val, sum(sq.n_objects for _, sq in picked))


def wrong_pixels(labels: np.ndarray, found: np.ndarray, annotated: np.ndarray | None = None) -> np.ndarray:
    """Where ``found`` (a model's objects) is wrong against ``labels`` (the user's): the user's
    objects it does not find (IoU ≤ 0.5 with each of its objects) and its objects matching
    none of the user's, inside ``annotated``.
    """
    lab, pred = np.asarray(labels), np.asarray(found)
    ti, pi, iou, _, _ = iou_pairs(lab, pred)  # indices into each one's ids in ascending order
    right_t = np.unique(lab[lab > 0])[ti[iou > 0.5]]
    right_p = np.unique(pred[pred > 0])[pi[iou > 0.5]]
    wrong = ((lab > 0) & ~np.isin(lab, right_t)) | ((pred > 0) & ~np.isin(pred, right_p))
    return wrong if annotated is None else wrong & np.asarray(annotated, bool)


@dataclass(frozen=True)
class _Square:
    box: tuple[slice, slice]
    ids: np.ndarray  # the objects annotated in full whose centres lie in it

    @property
    def n_objects(self) -> int:
        return int(self.ids.size)


def _squares(lab: np.ndarray, ann: np.ndarray, side: int) -> list[_Square]:
    """The annotation cut into squares of ``side`` px, in the order of a sweep (rows read
    left to right and right to left in turn); squares less than a quarter annotated and
    holding no whole object are left out.
    """
    rows, cols = np.nonzero(ann)
    y0, x0 = int(rows.min()), int(cols.min())
    n_rows, n_cols = (int(rows.max()) - y0) // side + 1, (int(cols.max()) - x0) // side + 1
    whole = fraction_inside(lab, ann) == 1.0
    whole[0] = False
    ids = np.flatnonzero(whole)
    centres = np.array(ndi.center_of_mass(np.ones(lab.shape), lab, ids)).reshape(-1, 2)
    cells = ((centres[:, 0] - y0) // side).astype(int) * n_cols + ((centres[:, 1] - x0) // side).astype(int)
    out = []
    for r in range(n_rows):
        for c in range(n_cols) if r % 2 == 0 else range(n_cols - 1, -1, -1):
            box = (slice(y0 + r * side, y0 + (r + 1) * side), slice(x0 + c * side, x0 + (c + 1) * side))
            square = _Square(box, ids[cells == r * n_cols + c])
            if square.n_objects or 4 * int(ann[box].sum()) >= side * side:
                out.append(square)
    return out


def _holds_errors(square: _Square, labels: np.ndarray, wrong: np.ndarray | None, missed: np.ndarray | None) -> bool:
    """Whether a square holds an object the model got wrong (``missed``: their ids), or
    background it made an object of.
    """
    if wrong is None:
        return False
    made_up = np.asarray(wrong[square.box], bool) & (labels[square.box] == 0)
    return bool(np.isin(square.ids, missed).any() or made_up.any())


def _patches(held: np.ndarray) -> list[tuple[tuple[slice, slice], np.ndarray]]:
    """Boxes around the held-out squares (with :data:`CONTEXT`), overlapping ones merged, each
    with the part of the image its squares' windows cover (so no object is scored twice).
    """
    windows = ndi.maximum_filter(held, size=2 * CONTEXT + 1)
    parts, _ = ndi.label(windows)
    return [(box, parts == j) for j, box in enumerate(ndi.find_objects(parts), start=1)]
