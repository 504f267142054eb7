"""Fine-tuning and the refresh of predictions as worker jobs, and writing refreshed masks."""

from __future__ import annotations

import threading
import traceback
from collections.abc import Generator
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..devices import gui_threads, resolve_device
from ..finetune import edited_region
from ..finetune_click import SEGMENTATION, Finetuned, finetune_both_iter
from ..progress import Progress
from ..training import TrainConfig, TrainProgress
from .annotations import TrainingSet, merge_outside
from .jobs import segment_job, torch_threads
from .layers import model_input, write_labels


@dataclass(frozen=True)
class TrainStep(Progress):
    """A training step as the progress bar (done/total) and the loss plot (record) see it;
    ``stage`` is the network that took it."""

    record: TrainProgress | None = None


def finetune_job(
    model,
    click_model,
    data: TrainingSet,
    *,
    max_steps: int | None,
    max_seconds: float | None,
    config: TrainConfig,
    click_config: TrainConfig,
    click_share: float,
    validate: bool,
    device: str,
    stop: threading.Event,
) -> Generator[TrainStep, None, Finetuned]:
    """:func:`napari_unet.finetune_click.finetune_both_iter` on :func:`gui_threads` threads;
    the results on the CPU.

    Progress counts the whole budget: the click network's steps (or seconds) follow the
    segmentation model's. Device memory is handed back when the run ends, however it ends.
    """
    total = int(max_seconds) if max_seconds else int(max_steps or 0)
    job = finetune_both_iter(model, click_model, **data.finetune_args(), max_steps=max_steps,
                             max_seconds=max_seconds, click_share=click_share, device=device, config=config,
                             click_config=click_config, stop=stop, validate=validate)
    offset, done, network = 0, 0, SEGMENTATION
    try:
        with torch_threads(gui_threads()):
            try:
                while True:
                    step = next(job)
                    if step.network != network:  # the click network's turn: count on from here
                        offset, network = done, step.network
                    record = step.record
                    done = offset + (int(record.seconds) if max_seconds else record.step)
                    yield TrainStep(min(done, total), total, step.network, record)
            except StopIteration as end:  # the run's return value
                result = end.value
        click = None if result.click is None else replace(result.click, model=result.click.model.cpu())
        return replace(result, model=replace(result.model, model=result.model.model.cpu()), click=click)
    except Exception as exc:
        traceback.clear_frames(exc.__traceback__)  # finished frames would keep device tensors alive
        raise
    finally:
        job.close()
        del job
        release_memory(device)


def release_memory(device: str) -> None:
    """Give cached GPU memory back to the driver (a no-op on the CPU)."""
    if resolve_device(device).type == "cuda":
        torch.cuda.empty_cache()


@dataclass(frozen=True, eq=False)
class Refresh:
    """Where a fine-tuned model's prediction goes: an image (or one plane) and its labels layer."""

    image_layer: object
    labels_layer: object
    plane: int | None

    def input(self, n_channels: int):
        source = model_input(self.image_layer, n_channels)
        return source.plane(self.plane) if self.plane is not None else source


def refresh_job(inputs: list, model, device: str) -> Generator[Progress, None, list[np.ndarray]]:
    """Segment each ``ModelInput`` with the new model; returns their labels."""
    out = []
    for source in inputs:
        seg = yield from segment_job(np.asarray(source.data), model, channel_axis=source.channel_axis, device=device)
        out.append(seg.labels)
    return out


def write_refreshed(target: Refresh, labels: np.ndarray, data: TrainingSet, edits, margin: int) -> int | None:
    """Write ``labels`` into the target's layer except where the user corrected.

    Protected: the pixels trained on, and every object the user edited (also during
    training) with ``margin``. One undo step on the layer. Returns the pixels changed, or
    None (nothing written) when the new ids do not fit the layer's dtype.
    """
    layer, plane = target.labels_layer, target.plane
    current = np.asarray(layer.data[plane] if plane is not None else layer.data)
    protected = data.annotated_in(layer, plane, current.shape)
    edited = edits.edited(layer)
    if edited is not None:
        edited = edited[plane] if plane is not None else edited
        protected |= edited_region(current, edited, margin)
    merged = merge_outside(current, labels, protected, int(np.max(layer.data, initial=0)))
    if plane is None:
        return write_labels(layer, merged)
    full = np.array(layer.data)
    full[plane] = merged
    return write_labels(layer, full)
