"""Both networks learn from the same corrections, in one budget.

:func:`finetune_both_iter` runs the segmentation model's fine-tuning, then the click
network's; the click network gets :data:`CLICK_SHARE` of the budget. Neither model is
modified in place; a run that fails or is stopped early leaves the caller's models as
they were.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from napari_unet.finetune.clicks import CLICK_FINETUNE_DEFAULTS, finetune_click_iter
from napari_unet.finetune.regions import clickable_objects
from napari_unet.finetune.segmentation import FINETUNE_DEFAULTS, checked_inputs, finetune_iter
from napari_unet.model.files import image_channels
from napari_unet.model.unet import UNet
from napari_unet.progress import Progress, relay
from napari_unet.training.engine import TrainConfig, TrainProgress, TrainResult

# A quarter of the budget: the click network is smaller than the segmentation model and
# starts from a model that already finds objects; what it learns is the new look of the
# objects, which a few dozen steps of whole-object windows teach.
CLICK_SHARE = 0.25
SEGMENTATION, CLICK = "segmentation", "click"  # which network a FinetuneStep belongs to


@dataclass(frozen=True)
class FinetuneStep:
    """A step of :func:`finetune_both_iter`: which network took it, and the step (or how far a
    check of the segmentation model has got, a :class:`~napari_unet.progress.Progress`).
    """

    network: str  # SEGMENTATION or CLICK
    record: TrainProgress | Progress


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
    ends the run there. Other arguments as :func:`napari_unet.finetune.segmentation.finetune_iter`.
    """
    images, labels, annotated = checked_inputs(model, images, labels, annotated, channel_axis, max_steps, max_seconds)
    common = {"annotated": annotated, "device": device, "channel_axis": channel_axis, "stop": stop}
    seg_budget, click_budget = split_budget(max_steps, max_seconds, click_share, config.steps)
    note = _why_not(model, click_model, labels, annotated, click_budget)
    if note:  # the segmentation model takes the whole budget
        seg_budget = split_budget(max_steps, max_seconds, 0.0, config.steps)[0]
    seg_job = finetune_iter(model, images, labels, **seg_budget, **common, config=config, validate=validate, zoom=zoom)
    seg = yield from relay(seg_job, lambda record: FinetuneStep(SEGMENTATION, record))
    if not note and seg.stopped:
        note = "stopped before its turn"
    if note:
        return Finetuned(seg, None, note)
    click_job = finetune_click_iter(click_model, images, labels, **click_budget, **common, config=click_config)
    click = yield from relay(click_job, lambda record: FinetuneStep(CLICK, record))
    return Finetuned(seg, click)


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

