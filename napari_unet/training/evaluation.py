"""Scoring a model on held-out images: AP@0.5 and AP@0.75 of its segmentation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from napari_unet.inference.segment import segment
from napari_unet.labels import fraction_inside
from napari_unet.model.unet import UNet
from napari_unet.training.metrics import mean_average_precision


@dataclass(frozen=True)
class ValImage:
    """A held-out image of which only the annotated pixels are scored."""

    image: np.ndarray  # any layout :func:`~napari_unet.inference.segment.segment` takes
    labels: np.ndarray  # instance labels of its spatial shape
    annotated: np.ndarray | None = None  # bool; predicted objects mostly outside are not scored
    channel_axis: int | None = None


def evaluate(model: UNet, val: Sequence[tuple[np.ndarray, np.ndarray] | ValImage], device=None) -> tuple[float, float]:
    """AP@0.5 and AP@0.75 of ``model`` on (image, labels) pairs or :class:`ValImage`, via :func:`segment`."""
    items = [v if isinstance(v, ValImage) else ValImage(*v) for v in val]
    trues, preds = [], []
    for v in items:
        pred = segment(v.image, model, device=device, channel_axis=v.channel_axis)
        trues.append(v.labels if v.annotated is None else np.where(v.annotated, v.labels, 0))
        preds.append(pred if v.annotated is None else _mostly_inside(pred, v.annotated))
    ap = mean_average_precision(trues, preds, thresholds=(0.5, 0.75))
    return float(ap[0]), float(ap[1])


def _mostly_inside(labels: np.ndarray, annotated: np.ndarray) -> np.ndarray:
    """``labels`` without the objects that have less than half their pixels in ``annotated``."""
    keep = fraction_inside(labels, annotated) >= 0.5
    keep[0] = True
    return np.where(keep[labels], labels, 0)
