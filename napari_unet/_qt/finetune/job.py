"""Fine-tuning and the refresh of predictions as worker jobs, and writing refreshed masks."""

from __future__ import annotations

import threading
import traceback
from collections.abc import Generator
from dataclasses import dataclass, replace

import numpy as np
import torch

from napari_unet._qt.finetune.annotations import TrainingSet
from napari_unet._qt.jobs import segment_job
from napari_unet._qt.layers import model_input, write_labels
from napari_unet._qt.threads import gui_threads, torch_threads
from napari_unet.devices import resolve_device
from napari_unet.finetune.both import SEGMENTATION, Finetuned, finetune_both_iter
from napari_unet.finetune.quality import CHECKING
from napari_unet.finetune.regions import Changes, edited_region, merge_outside, object_changes, refresh_min_size
from napari_unet.inference.instances import InstanceParams
from napari_unet.labels import compact_labels
from napari_unet.progress import Progress, relay
from napari_unet.training.engine import TrainConfig, TrainProgress


@dataclass(frozen=True)
class TrainStep(Progress):
    """A training step as the progress bar (done/total) and the loss plot (record) see it;
    ``stage`` is the network that took it, or :data:`CHECKING` (no record) while the models
    are checked on the corrections.
    """

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
    """:func:`napari_unet.finetune.clicks.finetune_both_iter` on :func:`gui_threads` threads;
    the results on the CPU.

    Progress counts the whole budget: the click network's steps (or seconds) follow the
    segmentation model's. Device memory is handed back when the run ends, however it ends.
    """
    total = int(max_seconds) if max_seconds else int(max_steps or 0)
    job = finetune_both_iter(model, click_model, **data.finetune_args(), max_steps=max_steps,
                             max_seconds=max_seconds, click_share=click_share, device=device, config=config,
                             click_config=click_config, stop=stop, validate=validate)
    count = {"offset": 0, "done": 0, "network": SEGMENTATION}

    def as_bar(step) -> TrainStep:
        if not isinstance(step.record, TrainProgress):  # the models checked on the corrections
            return TrainStep(step.record.done, step.record.total, CHECKING)
        if step.network != count["network"]:  # the click network's turn: count on from here
            count.update(offset=count["done"], network=step.network)
        record = step.record
        count["done"] = count["offset"] + (int(record.seconds) if max_seconds else record.step)
        return TrainStep(min(count["done"], total), total, step.network, record)

    try:
        with torch_threads(gui_threads()):
            result = yield from relay(job, as_bar)
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
    """Where a fine-tuned model's prediction goes: an image (or planes of a stack) and its labels layer."""

    image_layer: object
    labels_layer: object
    planes: tuple[int, ...] | None  # None: a 2D image

    def inputs(self, n_channels: int) -> list:
        """The ``ModelInput`` of each plane to segment (the image itself if 2D)."""
        source = model_input(self.image_layer, n_channels)
        return [source] if self.planes is None else [source.plane(z) for z in self.planes]


def segmented_planes(labels, shown: int) -> tuple[int, ...]:
    """The planes of a stack to redraw: every one holding masks (it was segmented), and the one on screen."""
    data = np.asarray(labels)
    having = data.reshape(len(data), -1).any(axis=1)
    having[shown] = True
    return tuple(int(z) for z in np.flatnonzero(having))


def refresh_job(inputs: list[list], model, device: str) -> Generator[Progress, None, list[list[np.ndarray]]]:
    """Segment each target's ``ModelInput`` planes with the new model; returns their labels.

    Progress counts planes (tiles when there is a single 2D image), so a long stack shows
    how far it has got; the worker can stop between tiles.
    """
    total = sum(len(planes) for planes in inputs)
    out, done = [], 0
    for planes in inputs:
        out.append([])
        for source in planes:
            job = segment_job(np.asarray(source.data), model, channel_axis=source.channel_axis, device=device)
            result, _ = yield from relay(job, lambda step, done=done: step if total == 1 else
                                         Progress(done, total, "new masks"))
            out[-1].append(result.labels)
            done += 1
            if total > 1:
                yield Progress(done, total, "new masks")
    return out


@dataclass(frozen=True, eq=False)
class PlaneChange:
    """A plane (or 2D image) a refresh changed: what it held before, and what changed, in objects."""

    layer: object  # the labels layer
    plane: int | None  # None: a 2D image
    before: np.ndarray  # the plane's labels before the refresh
    changes: Changes


def write_refreshed(target: Refresh, results: list[np.ndarray], data: TrainingSet, edits, margin: int,
                    params: InstanceParams) -> list[PlaneChange] | None:
    """Write the new labels into the target's layer (every refreshed plane) except where the user corrected.

    Protected: the pixels trained on, and every object the user edited (also during
    training) with ``margin``. New ids are unique across the stack; no object under the
    model's minimum size (``params``, :func:`refresh_min_size`) is made. One undo step on
    the layer. Returns each changed plane, or None (nothing written) when the new ids do
    not fit the layer's dtype.
    """
    layer = target.labels_layer
    edited = edits.edited(layer)
    planes = [None] if target.planes is None else list(target.planes)
    full = np.array(layer.data)
    top, limit = int(full.max(initial=0)), np.iinfo(full.dtype).max
    out = []
    for z, labels in zip(planes, results):
        current = full if z is None else full[z]
        smallest = refresh_min_size(current, params.min_size, params.min_relative_size)
        merged = merge_outside(current, labels, _protected(data, layer, z, current, edited, margin), top, smallest)
        top = max(top, int(merged.max(initial=0)))
        if top > limit:
            return None
        changes = object_changes(current, merged, plane=z is not None)
        if changes.any:
            out.append(PlaneChange(layer, z, current.copy(), changes))
        if z is None:
            full = merged
        else:
            full[z] = merged
    write_labels(layer, full.astype(layer.data.dtype, copy=False))
    return out


def _protected(data: TrainingSet, layer, plane: int | None, current: np.ndarray, edited, margin: int) -> np.ndarray:
    protected = data.annotated_in(layer, plane, current.shape)
    if edited is not None:
        protected |= edited_region(current, edited[plane] if plane is not None else edited, margin)
    return protected


def new_layer_labels(target: Refresh, results: list[np.ndarray]) -> np.ndarray:
    """Data for a new masks layer of the target's shape: its refreshed planes, ids unique across them."""
    if target.planes is None:
        return results[0]
    out = np.zeros(np.shape(target.labels_layer.data), np.int64)
    for z, labels in zip(target.planes, results):
        out[z] = np.where(labels > 0, labels.astype(np.int64) + int(out.max(initial=0)), 0)
    return compact_labels(out)
