"""The click network learns from the same corrections as the segmentation model.

:func:`finetune_click_iter` fine-tunes a copy of a click network on corrected labels
with simulated clicks (:mod:`napari_unet.clicks.train`); only objects annotated in full
are clicked on. The click network is not modified in place.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Generator, Sequence

import numpy as np
import torch

from napari_unet.clicks.train import click_train_config, train_click_iter
from napari_unet.finetune.regions import clickable_objects
from napari_unet.finetune.segmentation import FINETUNE_DEFAULTS, card_after, checked_inputs, with_budget
from napari_unet.model.files import image_channels, model_card
from napari_unet.model.unet import UNet
from napari_unet.progress import run
from napari_unet.training.engine import TrainConfig, TrainProgress, TrainResult
from napari_unet.training.sources import ArraySource

CLICK_FINETUNE_DEFAULTS = click_train_config(
    steps=100,  # when run alone with no budget (finetune_both_iter splits the caller's budget)
    lr=FINETUNE_DEFAULTS.lr,  # the same gentle peak as the segmentation model
    min_lr=FINETUNE_DEFAULTS.min_lr,
    warmup=0.05,  # a share of its budget, as before the segmentation model's warm-up counted steps
    val_every=0,  # no held-out clicks: the smoothed loss picks the weights
    freeze_norm=True,  # a handful of objects estimate BatchNorm statistics badly
    augment=FINETUNE_DEFAULTS.augment,
)


def finetune_click_iter(
    click_model: UNet,
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    *,
    annotated: Sequence[np.ndarray | None] | None = None,
    max_steps: int | None = None,
    max_seconds: float | None = None,
    device: str | torch.device | None = None,
    channel_axis: int | None = None,
    config: TrainConfig = CLICK_FINETUNE_DEFAULTS,
    stop: threading.Event | None = None,
) -> Generator[TrainProgress, None, TrainResult]:
    """Fine-tune a copy of a click network on corrected labels with simulated clicks.

    Takes the arguments of :func:`napari_unet.finetune.segmentation.finetune_iter`; ``click_model``
    is not modified. Raises ValueError when it is not a click network or no object is
    annotated in full.
    """
    images, labels, annotated = checked_inputs(click_model, images, labels, annotated, channel_axis, max_steps,
                                               max_seconds)
    card = model_card(click_model)
    if card.task != "click" or not card.click_channels:
        raise ValueError(f"'{card.name}' is not a click network (its task is '{card.task}')")
    n_objects = clickable_objects(labels, annotated)
    if n_objects == 0:
        raise ValueError("no object is annotated in full, and the click network learns from whole "
                         "objects: correct whole objects, or annotate the area around them")
    source = ArraySource(images, labels, annotated, channels=image_channels(click_model),
                         channel_axis=channel_axis, normalization=card.normalization)
    student = copy.deepcopy(click_model)
    result = yield from train_click_iter(student, source, with_budget(config, max_steps, max_seconds),
                                         device=device, stop=stop)
    result.model.card = card_after(card, n_objects, result)
    return result


def finetune_click(click_model: UNet, images, labels, **kwargs) -> UNet:
    """Run :func:`finetune_click_iter` to the end and return the fine-tuned click network."""
    return run(finetune_click_iter(click_model, images, labels, **kwargs)).model
