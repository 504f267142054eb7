"""Training a new model as a worker job: the core's ``train_iter`` with a held-out part scored live."""

from __future__ import annotations

import math
import threading
import traceback
from collections.abc import Generator
from dataclasses import dataclass, replace
from functools import cache

import numpy as np
import torch

from napari_unet._gl_guard import block_triton
from napari_unet._qt.finetune.job import release_memory
from napari_unet._qt.quiet_imports import import_thread, without_gc_pauses
from napari_unet._qt.threads import gui_threads, torch_threads
from napari_unet._qt.train.heldout import HeldOut, Score, hold_out, score_classes, score_objects
from napari_unet.inference.intensity import normalize_intensity
from napari_unet.model.files import load_model
from napari_unet.model.unet import UNet
from napari_unet.progress import Progress
from napari_unet.training.engine import TrainProgress
from napari_unet.training.tasks import continued_plan, new_network, prepare, semantic_plan, train_iter

CLASSES, OBJECTS = "classes", "objects"  # the widget's words for task="semantic" / "instances"
TASKS = {CLASSES: "semantic", OBJECTS: "instances"}
SCORE_EVERY_S = 5.0  # training seconds between held-out scores (scoring time is not counted)
MAX_CLASSES = 50  # more label values than this are objects, not classes
_KINDS = {2: "a 2D image", 3: "a volume"}  # images by their dimensions, as messages name them


@dataclass(frozen=True)
class Pair:
    """Another image and its painted labels (``[Z]YX``) to learn from."""

    image: np.ndarray
    labels: np.ndarray
    annotated: np.ndarray | None = None  # where the labels count; None: every painted plane
    spacing: tuple[float, ...] | None = None  # its voxel size ([Z]YX); None: the first image's


@dataclass(frozen=True)
class Request:
    """What to train: an image and its painted labels (``[Z]YX``), more pairs if any, the task and the budget."""

    image: np.ndarray
    labels: np.ndarray
    task: str  # CLASSES or OBJECTS
    classes: dict[int, str]  # names of the label values (classes only)
    spacing: tuple[float, ...]
    max_seconds: float | None
    max_steps: int | None
    hold_out: bool = True  # keep a painted slice (or band) out of training and score it
    base_channels: int | None = None  # classes: a narrower network than the plan's (tests)
    init: UNet | None = None  # the network to start from; None: a fresh one (classes), the shipped one (objects)
    annotated: np.ndarray | None = None  # where the labels count; None: every painted plane (see tasks.prepare)
    more: tuple[Pair, ...] = ()  # more images to learn from, each at its own spacing (nothing held out of them)


@dataclass(frozen=True)
class TrainStep(Progress):
    """A training step for the bar (seconds or steps done), the loss plot and the held-out figure."""

    record: TrainProgress | None = None
    score: Score | None = None


@dataclass(frozen=True)
class Trained:
    """The new model (on the CPU, its card naming the task and classes) and its last held-out score."""

    model: UNet
    held: HeldOut | None
    score: Score | None


def check_pair(image: np.ndarray, labels: np.ndarray) -> None:
    """Raise ValueError saying what is wrong with an image and its painted labels, and what to do."""
    image_shape, labels_shape = np.shape(image), np.shape(labels)
    if labels_shape != image_shape:
        raise ValueError(f"the labels are {' x '.join(map(str, labels_shape))} but the image is "
                         f"{' x '.join(map(str, image_shape))}; paint in a Labels layer made for this image "
                         "(select it, then Layers › New Labels layer)")
    labels = np.asarray(labels)
    if not labels.any():
        raise ValueError("the labels layer is empty: paint a few slices first (each painted slice counts "
                         "whole: what is left at 0 there is background)")


def check_kind(name: str, source, first: str, ndim: int, untick: str) -> None:
    """Raise ValueError when image ``name`` (its :func:`~napari_unet._qt.layers.model_input`) is not of
    the kind of image ``first`` (``ndim`` dimensions): one model learns from one channel, all 2D images
    or all volumes. ``untick`` ends the message: how to leave the image out.
    """
    n = np.ndim(source.data)
    if source.channel_axis is not None or n != ndim:
        what = "has colour channels" if source.channel_axis is not None else f"is {_KINDS.get(n, f'{n}-D')}"
        raise ValueError(f"'{name}' {what} but '{first}' is {_KINDS.get(ndim, f'{ndim}-D')}: one model learns "
                         f"from images of one kind (one channel; all 2D or all volumes); {untick}")


def more_images(request: Request) -> str:
    """" and 2 more images" for a request with other images in ``more``; "" without."""
    n = len(request.more)
    return f" and {n} more image{'s' * (n != 1)}" if n else ""


def check_classes(values: list[int]) -> None:
    """Raise ValueError when the painted label ``values`` (of every pair) can't be the classes of a model."""
    if len(values) < 2:
        raise ValueError(f"only one class ({values[0]}) is painted: a model needs at least two; paint "
                         "another class, or leave some background at 0 on a painted slice")
    if len(values) > MAX_CLASSES:
        raise ValueError(f"the labels hold {len(values)} values: these look like objects, not classes; "
                         "choose 'objects', or paint a few class values")


def painted_values(*labels: np.ndarray) -> list[int]:
    """The label values on the painted planes of each labels array (0 included where a painted
    plane has background), all together.
    """
    values = set()
    for each in labels:
        planes = np.asarray(each).reshape(-1, *np.shape(each)[-2:])
        values.update(int(v) for v in np.unique(planes[planes.any(axis=(1, 2))]))
    return sorted(values)


@cache
def warm_up_training() -> threading.Thread:
    """Make torch import what its first optimizer imports, in a thread of its own, once per process.

    Creating the first optimizer imports ~900 modules (torch._dynamo, sympy): seconds of
    work holding the GIL in pieces of up to ~0.5 s, which froze the viewer that long
    soon after Train was pressed. Call it once the canvas has drawn: triton is then kept
    out (see :mod:`napari_unet._gl_guard`); imported while OpenGL starts, it crashes.
    """

    def imports() -> None:
        block_triton()
        with without_gc_pauses():
            torch.optim.AdamW([torch.zeros(1, requires_grad=True)])

    thread = import_thread(imports, "napari-unet training warm-up")
    thread.start()
    return thread


def train_job(request: Request, *, device: str, stop: threading.Event,
              score_every: float = SCORE_EVERY_S) -> Generator[TrainStep, None, Trained]:
    """:func:`napari_unet.training.tasks.train_iter` on :func:`gui_threads` threads at background
    priority, scoring the held-out part on the first step, every ``score_every`` training
    seconds and at the end (``score_every`` infinite: only at the end). Device memory is handed back however it ends.
    """
    try:
        with torch_threads(gui_threads()):
            return (yield from _train(request, device, stop, score_every))
    except Exception as exc:
        traceback.clear_frames(exc.__traceback__)  # finished frames would keep device tensors alive
        raise
    finally:
        release_memory(device)


def _train(request: Request, device, stop, score_every) -> Generator[TrainStep, None, Trained]:
    pairs = [Pair(request.image, request.labels, request.annotated), *request.more]
    (image, labels, annotated), *more = prepare([p.image for p in pairs], [p.labels for p in pairs],
                                                [p.annotated for p in pairs])
    # The held-out part comes from the first pair only: its image is the one scored (and shown).
    train_mask, held = hold_out(annotated) if request.hold_out else (annotated, None)
    data = [(image, labels, train_mask), *more]
    spacing = request.spacing
    if request.more:  # one voxel size per image: training resamples them all to their median (tasks.at_spacing)
        spacing = [request.spacing, *(p.spacing if p.spacing is not None else request.spacing for p in request.more)]
    model, scorer = request.init, None
    if request.task == CLASSES:
        plan = continued_plan(model, data) if model is not None else None
        if plan is None:
            plan = semantic_plan(data, spacing, request.classes, device)
        if request.base_channels is not None and model is None:
            plan = replace(plan, base_channels=request.base_channels)
        if model is None:
            model = new_network(plan)
        if held is not None:
            normalized = normalize_intensity(image, plan.intensity)

            def scorer(step):
                return score_classes(model, normalized, labels, annotated, held, plan, step, device, request.spacing)
    else:
        model = model if model is not None else load_model()
        if held is not None:

            def scorer(step):
                return score_objects(model, image, labels, held, step, device)

    job = train_iter([d[0] for d in data], [d[1] for d in data], task=TASKS[request.task],
                     annotated=[d[2] for d in data], spacing=spacing,
                     classes=request.classes, max_seconds=request.max_seconds, max_steps=request.max_steps,
                     init=model, device=device, stop=stop, base_channels=request.base_channels)
    total = int(request.max_seconds) if request.max_seconds else int(request.max_steps or 0)
    next_score, step = (0.0 if math.isfinite(score_every) else math.inf), 0
    try:
        while True:
            try:
                record = next(job)
            except StopIteration as done:
                model = done.value
                break
            score, step = None, record.step
            if scorer is not None and record.seconds >= next_score and not stop.is_set():
                score = scorer(record.step)  # while the engine waits: not counted in the budget
                model.train()
                next_score = record.seconds + score_every
            done = int(record.seconds) if request.max_seconds else record.step
            yield TrainStep(min(done, total), total, "training", record, score)
    finally:
        job.close()
    final = scorer(step) if scorer is not None and step else None
    return Trained(model.cpu(), held, final)

