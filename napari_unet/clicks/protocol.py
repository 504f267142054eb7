"""Simulated users: where the standard interactive-segmentation protocol clicks, and NoC.

The protocol (as in RITM, Sofiiuk et al. 2022, and the papers it follows): the first
click is at the object's interior point farthest from its border; each next click is
at the error pixel farthest from any correctly segmented pixel, positive if that
error is a missed part of the object and negative if it is an extra part. NoC@t is
the number of clicks needed to reach IoU ``t`` (the click limit when never reached).
Training uses the same :func:`next_click` on network outputs, and :func:`human_click`,
its jittered variant; fine-tuning uses it on the user's corrected labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from napari_unet.clicks.segmenter import ClickSegmenter, farthest_point
from napari_unet.clicks.types import Click, ObjectMask


def first_click(target: np.ndarray) -> Click | None:
    """The object's interior point farthest from its border (None for an empty target)."""
    point = farthest_point(target)
    return None if point is None else Click(*point, True)


def next_click(pred: np.ndarray, target: np.ndarray, valid: np.ndarray | None = None) -> Click | None:
    """Where the protocol clicks next, given the current mask; None when there is no error.

    Parameters
    ----------
    pred, target
        bool masks of the same shape: the current result and the true object.
    valid
        Optional bool mask: errors outside it (unannotated pixels) are not clicked.
    """
    missed = target & ~pred
    extra = pred & ~target
    if valid is not None:
        missed &= valid
        extra &= valid
    # distance of each error pixel to the nearest correct pixel; the array's edge counts
    # as correct, so a click is never put at the very edge of a window
    d_missed = ndi.distance_transform_edt(np.pad(missed, 1))[1:-1, 1:-1] if missed.any() else None
    d_extra = ndi.distance_transform_edt(np.pad(extra, 1))[1:-1, 1:-1] if extra.any() else None
    best = [(d.max(), d, kind) for d, kind in ((d_missed, True), (d_extra, False)) if d is not None]
    if not best:
        return None
    _, dist, positive = max(best, key=lambda t: t[0])
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return Click(int(y), int(x), positive)


def human_click(pred: np.ndarray, target: np.ndarray, rng: np.random.Generator,
                valid: np.ndarray | None = None, depth: float = 0.4) -> Click | None:
    """A person's next click: in the error region the protocol would click, anywhere at least
    ``depth`` of the way to its deepest point (people aim inside the error, not at its centre).
    """
    click = next_click(pred, target, valid)
    if click is None:
        return None
    error = (target & ~pred) if click.positive else (pred & ~target)
    if valid is not None:
        error &= valid
    parts, _ = ndi.label(error)
    region = parts == parts[click.y, click.x]
    dist = ndi.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    ys, xs = np.nonzero(dist >= depth * dist[click.y, click.x])
    k = int(rng.integers(ys.size))
    return Click(int(ys[k]), int(xs[k]), click.positive)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two bool masks (1.0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def interact(segmenter: ClickSegmenter, target: np.ndarray, max_clicks: int = 20,
             stop_iou: float | None = None) -> list[float]:
    """Let the simulated user click on one object; the IoU after each click.

    Parameters
    ----------
    segmenter
        Answers the clicks (holds the image and the click network).
    target
        bool mask of the true object, the image's spatial shape.
    max_clicks
        The protocol's click limit (20 in the literature).
    stop_iou
        Stop early once this IoU is reached (later clicks would not change NoC).
    """
    clicks = [first_click(target)]
    previous: ObjectMask | None = None
    ious: list[float] = []
    while clicks[-1] is not None and len(ious) < max_clicks:
        previous = segmenter.predict(clicks, previous)
        ious.append(_iou_window(previous, target))
        if stop_iou is not None and ious[-1] >= stop_iou:
            break
        clicks.append(next_click(previous.full(), target))
    return ious


def click_objects(segmenter: ClickSegmenter, labels: np.ndarray, ids: Sequence[int], max_clicks: int = 20,
                  stop_iou: float | None = 0.9) -> list[tuple[float, list[float]]]:
    """The simulated user on each object ``ids`` of ``labels``: (equivalent diameter, IoUs)."""
    rows = []
    for obj in ids:
        target = labels == obj
        rows.append((2 * float(np.sqrt(target.sum() / np.pi)), interact(segmenter, target, max_clicks, stop_iou)))
    return rows


def clicks_to_reach(ious: Sequence[float], threshold: float, max_clicks: int = 20) -> int:
    """NoC for one object: the first click count whose IoU reaches ``threshold``."""
    for n, value in enumerate(ious, start=1):
        if value >= threshold:
            return n
    return max_clicks


def _iou_window(result: ObjectMask, target: np.ndarray) -> float:
    inter = np.logical_and(result.mask, target[result.slices]).sum()
    union = result.mask.sum() + target.sum() - inter
    return float(inter / union) if union else 1.0
