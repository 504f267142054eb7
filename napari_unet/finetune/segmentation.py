"""Fine-tuning on a user's corrected labels: what counts as annotated, and the run itself.

The session's model is never trained in place: a copy learns, and the caller decides
whether to keep it. Pixels outside the annotated region are ignored by the loss, so a
partly corrected image never teaches "background" where nobody looked.
"""

from __future__ import annotations

import copy
import datetime
import math
import threading
from collections.abc import Generator, Sequence
from dataclasses import replace

import numpy as np
import torch

from napari_unet import checks
from napari_unet.finetune.quality import Counts, Quality, count_right, model_errors, scored_parts
from napari_unet.finetune.regions import count_objects
from napari_unet.inference.images import spatial_shape
from napari_unet.inference.zoom import labels_to_shape, resample, training_zoom, zoomed_shape
from napari_unet.model.card import MAX_ZOOM, MIN_ZOOM, ModelCard
from napari_unet.model.files import image_channels, model_card
from napari_unet.model.unet import UNet
from napari_unet.progress import Progress, relay, run
from napari_unet.training import holdout
from napari_unet.training.augment import AugmentConfig
from napari_unet.training.engine import TrainConfig, TrainProgress, TrainResult, train_iter
from napari_unet.training.sources import ArraySource

# Settings that suit a few corrected images: a short run, a gentle learning rate, and
# BatchNorm statistics kept from the base model (a handful of patches estimate them badly).
# Small patches and light augmentation buy steps: in a CPU minute, 128² patches without
# elastic/affine jitter gave ~4x the steps of 256² ones and the larger AP gain on the
# shifted synthetic task (benchmarks/bench_finetune.py; docs/benchmarks.md, Fine-tuning).
# The rate: on a real nuclei image corrected on one half, lr 1e-3 swung the other half's
# AP@0.5 from 0.81 to 0.73 at step 2, 0.93 at step 4 and 0.83 at step 40; 3e-4 gave 0.90,
# 0.87, 0.87 at steps 10, 20, 40. The warm-up counts steps, so a busy machine cannot end it
# after the first one.
FINETUNE_DEFAULTS = TrainConfig(
    steps=300,
    patch_size=128,
    lr=3e-4,
    min_lr=1e-5,
    warmup_steps=10,
    val_every=0,  # no scores while training: the held-out objects judge the end once (see validate)
    freeze_norm=True,
    augment=AugmentConfig(scale=(0.85, 1.2), affine_p=0.0, elastic_p=0.0, gamma=(0.8, 1.25),
                          contrast=(0.9, 1.1), blur_p=0.0, noise=(0.0, 0.0)),
)


def finetune_iter(
    model: UNet,
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    *,
    annotated: Sequence[np.ndarray | None] | None = None,
    max_steps: int | None = None,
    max_seconds: float | None = None,
    device: str | torch.device | None = None,
    channel_axis: int | None = None,
    config: TrainConfig = FINETUNE_DEFAULTS,
    stop: threading.Event | None = None,
    validate: bool = False,
    zoom: float | None = None,
) -> Generator[TrainProgress | Progress, None, TrainResult]:
    """Fine-tune a copy of ``model`` on corrected labels; yields progress, returns the result.

    Progress: a :class:`TrainProgress` per training step, and while the models are checked on
    the corrections (before the first step, and after each training) a
    :class:`~napari_unet.progress.Progress` of stage :data:`~napari_unet.finetune.quality.CHECKING`:
    on a whole corrected 2048² image the checks take ~37 s on a 2-core CPU (~9 s at 1024²).

    Parameters
    ----------
    model
        The model in use; it is not modified.
    images, labels
        2D images (any dtype, optional ``channel_axis``) and their corrected instance
        labels (0 = background).
    annotated
        Optional bool masks per image; pixels outside are ignored by the loss.
    max_steps, max_seconds
        Budgets (override ``config.steps`` / ``config.max_seconds``); whichever ends first.
    stop
        Set it from any thread to end after the current step, keeping the best weights. Set
        before the first step (while the model in use is checked on the corrections), it
        ends there: an unchanged copy of ``model``, 0 steps, no quality figure.
    validate
        With enough annotated objects (:data:`~napari_unet.training.holdout.MIN_OBJECTS`), split
        the annotation in two halves of squares spread over it
        (:func:`~napari_unet.training.holdout.halves`), train a copy without each half in
        turn (half the budget each) and count it on the half it did not see; the new model is
        the two copies' average, judged by those counts (see Returns). Each half is scored
        (AP@0.5, a progress record's ``val_ap50``) at its end, and with ``config.val_every``
        also every that many steps, keeping the best-scoring weights (the default scores
        once: weights chosen on the objects that then judge them would look better there
        than they are). With fewer objects, train on everything as without.
    zoom
        For a model whose card names no ``zoom``: the magnification to learn at, kept in
        the fine-tuned card so that it segments at it too; ``None``: the one automatic
        zoom picks for the annotated objects (:func:`training_zoom`). A model fine-tuned
        before keeps its own.

    Returns
    -------
    TrainResult
        ``.model`` is the fine-tuned copy, with its card's provenance filled in
        (``validation``: held-out objects and AP@0.5 before -> after, when validated;
        ``quality``: the corrected objects counted right before -> after and whether the
        new model is better, :class:`~napari_unet.finetune.quality.Quality`; when it is not,
        keep using ``model``).
    """
    images, labels, annotated = checked_inputs(model, images, labels, annotated, channel_axis, max_steps, max_seconds)
    if zoom is not None:
        zoom = checks.number(zoom, "zoom", MIN_ZOOM, MAX_ZOOM)
    card = model_card(model)
    n_objects = count_objects(labels, annotated)
    if n_objects == 0:
        raise ValueError("the labels hold no annotated objects; correct or draw some objects first")
    channels = image_channels(model)
    if card.zoom is not None:  # fine-tuned before: it keeps the zoom it segments at
        zoom = card.zoom
    elif zoom is None:
        zoom = training_zoom(labels, annotated)
    if zoom != 1.0:  # learn the objects at the size the network will see them
        images, labels, annotated = _zoomed(images, labels, annotated, zoom, channel_axis)
    halves = None
    if validate:  # each half holds its share of the model's errors (found at the zoom it learns at)
        wrong = yield from model_errors(model, images, labels, annotated, channel_axis, device, stop)
        if wrong is None or stop is not None and stop.is_set():
            return _not_started(model)
        halves = holdout.halves(images, labels, annotated, channels=channels, channel_axis=channel_axis, wrong=wrong)
    config = with_budget(config, max_steps, max_seconds)
    student = copy.deepcopy(model)
    student.card = replace(card, zoom=1.0)  # scored while it learns as it is judged: at the images' zoom
    if halves is None:  # too few objects (or no check asked for): train on all, count them all
        scored = scored_parts(images, labels, annotated, channel_axis)
        counted = yield from count_right(model, scored, device, zoom=1.0, stop=stop)  # the images are at the zoom
        if counted is None or stop is not None and stop.is_set():
            return _not_started(model)
        n_scored, right_before = counted
        result = yield from train_iter(student, _source(images, labels, annotated, channels, channel_axis, card),
                                       _patched(config, labels), device=device, stop=stop)
        _, right_after = yield from count_right(result.model, scored, device, zoom=1.0)
        quality = Quality(n_scored, False, right_before, right_after)
        trained_on = n_objects
    else:
        result, quality, learnt = yield from _two_halves(model, student, images, labels, halves, config, device,
                                                         stop, channel_axis)
        trained_on = count_objects(labels, learnt)
    card = card_after(card, trained_on, result, _validation(halves, quality))
    result.model.card = replace(card, zoom=zoom, provenance={**card.provenance, "quality": quality.as_dict()})
    return result


def _not_started(model: UNet) -> TrainResult:
    """Stopped before the first step: an unchanged copy of ``model`` (0 steps, no quality
    figure: nothing was learnt to judge).
    """
    return TrainResult(copy.deepcopy(model), -math.inf, 0, 0, 0.0, [], stopped=True)


def _two_halves(model: UNet, student: UNet, images, labels, halves, config: TrainConfig, device, stop,
                channel_axis) -> Generator[TrainProgress | Progress, None, tuple[TrainResult, Quality, list]]:
    """Train a copy of ``student`` without each half of the annotation in turn (half the budget
    each, the second one's records following on from the first's), count each on the half it
    did not see, and return their average, the old and new counts of every held-out object,
    and the annotated masks the result learnt from.

    A stop in the first half ends the run with that half's model and count. The average of two
    copies fine-tuned briefly from the same weights learnt from all of the annotation (as a
    "model soup"); on a real image's four halves it gained AP@0.5 +0.068 on the part never
    corrected, its copies +0.075 and +0.045 (docs/benchmarks.md, Fine-tuning).
    """
    runs, before, after, objects = [], Counts(0, 0), Counts(0, 0), 0
    done = TrainProgress(0, 0.0, 0.0, 0.0)
    for k, held in enumerate(halves):
        budget = replace(config, steps=(config.steps + 1 - k) // 2,
                         max_seconds=None if config.max_seconds is None else config.max_seconds / 2)
        if budget.steps == 0:
            break
        source = _source(images, labels, held.annotated, image_channels(model), channel_axis, model_card(model))
        job = train_iter(copy.deepcopy(student), source, _patched(budget, labels), device=device, stop=stop,
                         val=held.val)
        runs.append((yield from relay(job, lambda r, d=done, k=k: replace(r, step=r.step + d.step,
                                                                           seconds=r.seconds + d.seconds, run=k))))
        n, old = yield from count_right(model, held.val, device, zoom=1.0)
        _, new = yield from count_right(runs[-1].model, held.val, device, zoom=1.0)
        objects, before, after = objects + n, before + old, after + new
        done = TrainProgress(done.step + runs[-1].steps, 0.0, done.seconds + runs[-1].seconds, 0.0)
        if runs[-1].stopped:
            break
    quality = Quality(objects, True, before, after)
    if len(runs) == 1:
        return runs[0], quality, halves[0].annotated
    averaged, other = runs[0].model, runs[1].model.state_dict()
    averaged.load_state_dict({name: (value + other[name]) / 2 if value.is_floating_point() else value
                              for name, value in averaged.state_dict().items()})
    result = TrainResult(averaged, runs[1].best_metric, done.step, done.step, done.seconds,
                         runs[0].history + runs[1].history, stopped=runs[1].stopped)
    learnt = [None if a is None or b is None else a | b for a, b in zip(halves[0].annotated, halves[1].annotated)]
    return result, quality, learnt


def _source(images, labels, annotated, channels: int, channel_axis: int | None, card: ModelCard) -> ArraySource:
    return ArraySource(images, labels, annotated, channels=channels, channel_axis=channel_axis,
                       normalization=card.normalization)


def _patched(config: TrainConfig, labels) -> TrainConfig:
    """``config`` with patches no bigger than the smallest image (multiples of 16, at least 64)."""
    smallest = min(min(np.shape(lab)) for lab in labels)
    return replace(config, patch_size=min(config.patch_size, max(64, 16 * (smallest // 16))))


def _zoomed(images, labels, annotated, zoom: float, channel_axis: int | None):
    """Images (bilinear / area), labels (majority) and annotated masks (nearest) at ``zoom``."""
    out = [], [], []
    for image, lab, ann in zip(images, labels, annotated):
        shape = zoomed_shape(np.shape(lab)[-2:], zoom)
        img = np.asarray(image, np.float32)
        axis = -1 if channel_axis is None and img.ndim == 3 else channel_axis  # RGB(A): the last axis
        chans = img[None] if axis is None else np.moveaxis(img, axis, 0)
        chans = resample(chans, shape)
        out[0].append(chans[0] if axis is None else np.moveaxis(chans, 0, axis))
        out[1].append(labels_to_shape(np.asarray(lab), shape))
        out[2].append(None if ann is None else labels_to_shape(np.asarray(ann, np.int32), shape) > 0)
    return out


def finetune(model: UNet, images, labels, **kwargs) -> UNet:
    """Run :func:`finetune_iter` to the end and return the fine-tuned model."""
    return run(finetune_iter(model, images, labels, **kwargs)).model


def checked_inputs(model: UNet, images, labels, annotated, channel_axis: int | None,
                   max_steps=None, max_seconds=None) -> tuple[list, list, list]:
    """What fine-tuning was given, checked before any work: images, integer labels and
    bool annotated masks as lists of matching shapes (annotated: None where not given).

    Raises ``TypeError``/``ValueError`` saying which argument (and which image) is wrong
    and what to do: a single array where a list goes, labels of another shape than their
    image, float labels that are not whole numbers, negative ids, an empty annotated mask,
    an image with no object and no annotated mask (it would teach "background" everywhere),
    a budget that is not positive.
    """
    model = checks.model_or_none(model)
    if model is None:
        raise TypeError("give the model to fine-tune (e.g. napari_unet.load_model())")
    checks.budget(max_steps, max_seconds)
    images, labels = checks.image_list(images, "images"), checks.image_list(labels, "labels")
    if len(labels) != len(images) or not images:
        raise ValueError(f"got {len(images)} image(s) and {len(labels)} label image(s): give one label image "
                         "per image, at least one")
    annotated = [None] * len(images) if annotated is None else checks.image_list(annotated, "annotated")
    if len(annotated) != len(images):
        raise ValueError(f"got {len(annotated)} annotated masks for {len(images)} images: one per image "
                         "(None for an image annotated everywhere)")
    out_labels, out_annotated = [], []
    for i, (image, lab, ann) in enumerate(zip(images, labels, annotated)):
        shape = spatial_shape(image, image_channels(model), channel_axis)
        if len(shape) != 2:
            raise ValueError(f"image {i} has spatial shape {shape}: fine-tuning takes 2D images "
                             "(pass the planes of a stack one by one, e.g. stack[z])")
        lab = checks.label_image(lab, f"labels[{i}]")
        if lab.shape != tuple(shape):
            raise ValueError(f"labels[{i}] have shape {lab.shape} but image {i} has {tuple(shape)}: "
                             "give each image labels of its own shape")
        ann = None if ann is None else checks.mask(ann, shape, f"annotated[{i}]")
        if ann is not None and not ann.any():
            raise ValueError(f"annotated[{i}] marks no pixel: annotate part of image {i} or leave it out")
        if ann is None and not lab.any():
            raise ValueError(f"labels[{i}] hold no object: the whole of image {i} would be taught as "
                             "background. Label its objects, pass an annotated mask of the part you "
                             "checked, or leave it out")
        out_labels.append(lab)
        out_annotated.append(ann)
    return list(images), out_labels, out_annotated


def with_budget(config: TrainConfig, max_steps: int | None, max_seconds: float | None) -> TrainConfig:
    """``config`` with the caller's budgets; a time budget alone lifts the step budget."""
    return replace(
        config,
        steps=max_steps if max_steps is not None else (config.steps if max_seconds is None else 10**9),
        max_seconds=max_seconds if max_seconds is not None else config.max_seconds,
    )


def _validation(halves, quality: Quality) -> dict | None:
    """The held-out objects and AP@0.5 on them before -> after (None without any)."""
    if halves is None:
        return None
    return {"objects": quality.objects, "ap50_before": round(quality.before.ap(quality.objects), 3),
            "ap50_after": round(quality.after.ap(quality.objects), 3)}


def card_after(card: ModelCard, n_objects: int, result: TrainResult, validation: dict | None = None) -> ModelCard:
    """The card of a fine-tuned copy: its base, what it learnt from, how long, when."""
    provenance = {
        "base_model": card.name,
        "base_provenance": card.provenance,
        "fine_tuned_on": f"{n_objects} annotated objects",
        "steps": result.steps,
        "seconds": round(result.seconds, 1),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if validation is not None:
        provenance["validation"] = validation
    name = card.name if card.name.endswith("(fine-tuned)") else f"{card.name} (fine-tuned)"
    return replace(card, name=name, provenance=provenance)
