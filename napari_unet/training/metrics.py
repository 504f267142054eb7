"""Instance-segmentation accuracy: one-to-one matching of labelled objects by IoU.

The score at an IoU threshold t is the 2018 Data Science Bowl's "average precision"
TP / (TP + FP + FN), where a predicted object and a true object match when their IoU is
greater than t. For t >= 0.5 such matches are unique (two objects cannot both overlap
a third by more than half of their union); below 0.5 a maximum one-to-one matching is
found with the Hungarian algorithm. Works on label arrays of any dimension.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

_DENSE_LIMIT = 2**24  # joint histograms with more cells go through np.unique instead


def _relabel(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Map the ids of ``labels`` to 0..n (0 stays background); return flat ids and n."""
    flat = np.ravel(labels)
    if flat.dtype.kind not in "iub":
        raise TypeError(f"labels must be integer arrays, got {flat.dtype} (cast with .astype(int))")
    if flat.size and flat.min() < 0:
        raise ValueError("labels must be >= 0 (0 is background)")
    top = int(flat.max()) if flat.size else 0
    if top < 4 * flat.size + 1024:  # small ids: a lookup table beats sorting
        flat = flat.astype(np.intp, copy=False)
        present = np.bincount(flat, minlength=1) > 0
        present[0] = False
        lut = np.cumsum(present, dtype=np.int64) * present
        return lut[flat], int(present.sum())
    ids, inverse = np.unique(flat, return_inverse=True)
    if ids[0] != 0:
        return inverse.astype(np.int64) + 1, len(ids)
    return inverse.astype(np.int64), len(ids) - 1


def iou_pairs(
    true: np.ndarray, pred: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """IoU of every overlapping (true, pred) pair, from one joint histogram.

    Returns
    -------
    ti, pi : numpy.ndarray
        0-based indices of the overlapping true and predicted objects.
    iou : numpy.ndarray
        Their IoU.
    n_true, n_pred : int
        Numbers of true and predicted objects.
    """
    if np.shape(true) != np.shape(pred):
        raise ValueError(
            f"true and pred must have one shape, got {np.shape(true)} and {np.shape(pred)}"
        )
    t, n_true = _relabel(np.asarray(true))
    p, n_pred = _relabel(np.asarray(pred))
    area_t = np.bincount(t, minlength=n_true + 1)
    area_p = np.bincount(p, minlength=n_pred + 1)
    both = (t > 0) & (p > 0)
    code = t[both] * (n_pred + 1) + p[both]
    if (n_true + 1) * (n_pred + 1) <= _DENSE_LIMIT:
        hist = np.bincount(code, minlength=(n_true + 1) * (n_pred + 1))
        code = np.flatnonzero(hist)
        inter = hist[code]
    else:
        code, inter = np.unique(code, return_counts=True)
    ti, pi = np.divmod(code, n_pred + 1)
    iou = inter / (area_t[ti] + area_p[pi] - inter)
    return ti - 1, pi - 1, iou, n_true, n_pred


def _true_positives(ti: np.ndarray, pi: np.ndarray, iou: np.ndarray, threshold: float) -> int:
    hit = iou > threshold
    if threshold >= 0.5:
        return int(hit.sum())
    ti, pi, iou = ti[hit], pi[hit], iou[hit]
    if len(iou) == 0:
        return 0
    rows, ti = np.unique(ti, return_inverse=True)
    cols, pi = np.unique(pi, return_inverse=True)
    # maximise the number of matches first, then their total IoU as a tie-break
    cost = np.zeros((len(rows), len(cols)))
    cost[ti, pi] = -(1 + iou / (2 * len(iou)))
    r, c = linear_sum_assignment(cost)
    return int((cost[r, c] < 0).sum())


def match_counts(true: np.ndarray, pred: np.ndarray, iou_threshold: float) -> tuple[int, int, int]:
    """Count one-to-one matches between true and predicted objects.

    Parameters
    ----------
    true, pred : numpy.ndarray
        Integer label arrays of one shape (any dimension), 0 = background.
    iou_threshold : float
        A pair matches when its IoU is greater than this.

    Returns
    -------
    tuple of int
        (TP, FP, FN).
    """
    ti, pi, iou, n_true, n_pred = iou_pairs(true, pred)
    tp = _true_positives(ti, pi, iou, iou_threshold)
    return tp, n_pred - tp, n_true - tp


def average_precision(
    true: np.ndarray, pred: np.ndarray, thresholds: Sequence[float] = (0.5, 0.75)
) -> np.ndarray:
    """TP / (TP + FP + FN) at each IoU threshold (1.0 where both images are empty).

    Parameters
    ----------
    true, pred : numpy.ndarray
        Integer label arrays of one shape, 0 = background.
    thresholds : sequence of float
        IoU thresholds.

    Returns
    -------
    numpy.ndarray
        One score per threshold.
    """
    ti, pi, iou, n_true, n_pred = iou_pairs(true, pred)
    scores = []
    for t in thresholds:
        tp = _true_positives(ti, pi, iou, t)
        total = n_true + n_pred - tp  # TP + FP + FN
        scores.append(1.0 if total == 0 else tp / total)
    return np.asarray(scores, dtype=float)


def mean_average_precision(
    trues: Sequence[np.ndarray],
    preds: Sequence[np.ndarray],
    thresholds: Sequence[float] = (0.5, 0.75),
) -> np.ndarray:
    """Mean over images of :func:`average_precision`, one value per threshold."""
    if len(trues) != len(preds):
        raise ValueError(f"got {len(trues)} true label images but {len(preds)} predictions")
    if len(trues) == 0:
        raise ValueError("need at least one image to average over")
    return np.mean([average_precision(t, p, thresholds) for t, p in zip(trues, preds)], axis=0)
