"""The click network learns from the same corrections as the segmentation model.

:func:`finetune_click_iter` fine-tunes a copy of a click network on corrected labels
with simulated clicks (:mod:`napari_unet.clicks.train`); only objects annotated in full
are clicked on. :func:`finetune_both_iter` runs the segmentation model's fine-tuning,
then the click network's, inside one budget: the click network gets
:data:`CLICK_SHARE` of it. Neither model is modified in place; a run that fails or is
stopped early leaves the caller's models as they were.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Generator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from napari_unet.clicks.batches import MIN_PIXELS
from napari_unet.clicks.train import click_train_config, train_click_iter
from napari_unet.training.sources import ArraySource
from napari_unet.finetune import FINETUNE_DEFAULTS, _card_after, _inputs, _with_budget, finetune_iter
from napari_unet.model.unet import UNet
from napari_unet.model.files import image_channels, model_card
from napari_unet.progress import run
from napari_unet.training.engine import TrainConfig, TrainProgress, TrainResult

# A quarter of the budget: the click network is smaller than the segmentation model and
# starts from a model that already finds objects; what it learns is the new look of the
# objects, which a few dozen steps of whole-object windows teach.
CLICK_SHARE = 0.25
CLICK_FINETUNE_DEFAULTS = click_train_config(
    steps=100,  # when run alone with no budget (finetune_both_iter splits the caller's budget)
    lr=FINETUNE_DEFAULTS.lr,  # the same gentle peak as the segmentation model
    min_lr=FINETUNE_DEFAULTS.min_lr,
    warmup=FINETUNE_DEFAULTS.warmup,
    val_every=0,  # no held-out clicks: the smoothed loss picks the weights
    freeze_norm=True,  # a handful of objects estimate BatchNorm statistics badly
    augment=FINETUNE_DEFAULTS.augment,
)
SEGMENTATION, CLICK = "segmentation", "click"


def clickable_objects(labels: Sequence[np.ndarray], annotated: Sequence[np.ndarray | None]) -> int:
    """Objects annotated in full (and not tiny): the ones simulated clicks can be put on."""
    total = 0
    for lab, ann in zip(labels, annotated):
        lab = np.asarray(lab)
        sizes = np.bincount(lab.ravel())
        seen = sizes if ann is None else np.bincount(lab[np.asarray(ann, bool)], minlength=sizes.size)
        whole = (seen == sizes) & (sizes >= MIN_PIXELS)
        total += int(whole[1:].sum())
    return total


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

    Takes the arguments of :func:`napari_unet.finetune.finetune_iter`; ``click_model``
    is not modified. Raises ValueError when it is not a click network or no object is
    annotated in full.
    """
    images, labels, annotated = _inputs(images, labels, annotated)
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
    result = yield from train_click_iter(student, source, _with_budget(config, max_steps, max_seconds),
                                         device=device, stop=stop)
    result.model.card = _card_after(card, n_objects, result)
    return result


def finetune_click(click_model: UNet, images, labels, **kwargs) -> UNet:
    """Run :func:`finetune_click_iter` to the end and return the fine-tuned click network."""
    return run(finetune_click_iter(click_model, images, labels, **kwargs)).model


@dataclass(frozen=True)
class FinetuneStep:
    """A step of :func:`finetune_both_iter`: which network took it, and the step."""

    network: str  # SEGMENTATION or CLICK
    record: TrainProgress


@dataclass(frozen=True)
class Finetuned:
    """Both networks after :func:`finetune_both_iter`."""

    model: TrainResult
    click: TrainResult | None  # None: the click network was left as it was (see click_note)
    click_note: str = ""  # why it was left, for the user


def split_budget(max_steps: int | None, max_seconds: float | None, share: float,
                 steps: int = FINETUNE_DEFAULTS.steps) -> tuple[dict, dict]:
    """``max_steps`` / ``max_seconds`` for the segmentation model and the click network.

    ``steps`` is the step budget used when neither budget is given.
    """
    total_steps = max_steps if max_steps is not None or max_seconds is not None else steps
    click_steps = None if total_steps is None else int(round(total_steps * share))
    if click_steps is not None and share > 0 and total_steps >= 2:
        click_steps = max(1, click_steps)
    seg = {"max_steps": None if total_steps is None else total_steps - click_steps,
           "max_seconds": None if max_seconds is None else max_seconds * (1 - share)}
    click = {"max_steps": click_steps, "max_seconds": None if max_seconds is None else max_seconds * share}
    return seg, click


def finetune_both_iter(
    model: UNet,
    click_model: UNet | None,
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    *,
    annotated: Sequence[np.ndarray | None] | None = None,
    max_steps: int | None = None,
    max_seconds: float | None = None,
    click_share: float = CLICK_SHARE,
    device: str | torch.device | None = None,
    channel_axis: int | None = None,
    config: TrainConfig = FINETUNE_DEFAULTS,
    click_config: TrainConfig = CLICK_FINETUNE_DEFAULTS,
    stop: threading.Event | None = None,
    validate: bool = False,
    zoom: float | None = None,
) -> Generator[FinetuneStep, None, Finetuned]:
    """Fine-tune the segmentation model, then the click network, in one budget.

    The click network gets ``click_share`` of the budget (steps and seconds alike); when
    it cannot learn (no click network, other channels, no object annotated in full, a
    budget too small to share) the segmentation model gets it all and
    :attr:`Finetuned.click_note` says why. A stop during the segmentation model's turn
    ends the run there. Other arguments as :func:`napari_unet.finetune.finetune_iter`.
    """
    images, labels, annotated = _inputs(images, labels, annotated)
    common = {"annotated": annotated, "device": device, "channel_axis": channel_axis, "stop": stop}
    seg_budget, click_budget = split_budget(max_steps, max_seconds, click_share, config.steps)
    note = _why_not(model, click_model, labels, annotated, click_budget)
    if note:  # the segmentation model takes the whole budget
        seg_budget = split_budget(max_steps, max_seconds, 0.0, config.steps)[0]
    seg = yield from _tagged(SEGMENTATION, finetune_iter(model, images, labels, **seg_budget, **common,
                                                         config=config, validate=validate, zoom=zoom))
    if not note and seg.stopped:
        note = "stopped before its turn"
    if note:
        return Finetuned(seg, None, note)
    click = yield from _tagged(CLICK, finetune_click_iter(click_model, images, labels, **click_budget, **common,
                                                          config=click_config))
    return Finetuned(seg, click)


def _tagged(network: str, job: Generator) -> Generator[FinetuneStep, None, TrainResult]:
    while True:
        try:
            record = next(job)
        except StopIteration as end:
            return end.value
        yield FinetuneStep(network, record)


def _why_not(model: UNet, click_model: UNet | None, labels, annotated, budget: dict) -> str:
    """Why the click network cannot learn in this run ("" when it can)."""
    if click_model is None:
        return "no click network in use"
    if not budget["max_steps"] and not budget["max_seconds"]:
        return "its share of the budget is zero"
    have, want = image_channels(model), image_channels(click_model)
    if have != want:
        return f"it takes {want} image channel(s), the segmentation model {have}"
    if clickable_objects(labels, annotated) == 0:
        return "no object is annotated in full (the click network learns from whole objects)"
    return ""

