"""Teach a model a new task from the user's own labels: one call for classes or for objects.

:func:`train_iter` takes images and (possibly partial) labels as they come from napari
layers or files, plans the run from the data (:mod:`.plan`), and runs the one training
engine (:func:`napari_unet.training.engine.train_iter`) on them:

- ``task="semantic"``: each label value is a class (0 the background inside the
  annotated region); a fresh network of the plan's shape learns the class map;
- ``task="instances"``: labels are objects; the shipped nuclei model (or ``init``) is
  trained on, plane by plane.

Only annotated voxels count. By default that is every voxel of every plane that holds a
label, so painting a few planes of a volume is a valid training set.

Images of different voxel sizes train one model: as nnU-Net does, each is resampled (with
its labels) to the plan's target spacing, the median of theirs, so an organ is learnt at
one size (:func:`at_spacing`).
"""

from __future__ import annotations

import datetime
import threading
import warnings
from collections.abc import Generator, Sequence
from dataclasses import replace

import numpy as np
import torch
from scipy import ndimage as ndi

from napari_unet import checks
from napari_unet.devices import resolve_device
from napari_unet.inference.images import check_axes, to_canonical
from napari_unet.inference.zoom import labels_to_shape, resample, training_zoom, zoomed_shape
from napari_unet.model.card import ModelCard
from napari_unet.model.files import load_model, model_card
from napari_unet.model.unet import UNet
from napari_unet.progress import run
from napari_unet.training.engine import TrainConfig, TrainProgress, TrainResult
from napari_unet.training.engine import train_iter as engine_train_iter
from napari_unet.training.losses import LossConfig
from napari_unet.training.plan import Plan, fingerprint, make_plan, resampled_shape, target_spacing
from napari_unet.training.semantic import SemanticSampler, VolumeSampler, semantic_source
from napari_unet.training.sources import ArraySource

# Going on from a trained class model (init=): its weights already fit, so a lower peak rate
# reached over the first steps keeps a short run on a few corrections from undoing them,
# and BatchNorm statistics stay those of the whole training set (see finetune.segmentation).
CONTINUE_LR, CONTINUE_WARMUP_STEPS = 3e-4, 10
DEFAULT_SECONDS = 300.0  # time budget when neither max_seconds nor max_steps is given
TASK_NAMES = ("semantic", "instances")


def _as_list(x, what: str) -> list:
    if x is None:
        return []
    if isinstance(x, np.ndarray) or not isinstance(x, (list, tuple)):
        return [x]
    return list(x)


def prepare(images, labels, annotated=None, axes: str | None = None):
    """Images, labels and annotated masks as lists of ``[Z]YX`` arrays, checked.

    ``annotated`` defaults to every voxel of every plane (Z) holding a label; a 2D image
    with any label is annotated everywhere.
    """
    images, labels = _as_list(images, "images"), _as_list(labels, "labels")
    masks = _as_list(annotated, "annotated") or [None] * len(images)
    if not images or len(images) != len(labels) or len(masks) != len(images):
        raise ValueError(f"give as many label images as images (and annotated masks, if any): got "
                         f"{len(images)} images, {len(labels)} labels, {len(_as_list(annotated, ''))} masks")
    out = []
    for i, (img, lab, ann) in enumerate(zip(images, labels, masks)):
        img, lab = np.asarray(img), np.asarray(lab)
        order = check_axes(axes, img.ndim) if axes else {2: "YX", 3: "ZYX"}.get(img.ndim)
        if order is None or "C" in order or "T" in order:
            raise ValueError(f"image {i} has shape {img.shape}: training takes single-channel 2D images (YX) or "
                             "volumes (ZYX); pass one channel and one time point, or say axes='ZYX'")
        if lab.shape != img.shape:
            raise ValueError(f"image {i} has shape {img.shape} but its labels {lab.shape}; they must match")
        lab = checks.label_image(lab.astype(np.uint8) if lab.dtype == bool else lab, f"labels {i}")
        img, _ = to_canonical(img, order)
        lab, _ = to_canonical(lab, order)
        if ann is None:
            planes = lab.reshape(-1, *lab.shape[-2:]).any(axis=(1, 2))
            ann = np.broadcast_to(planes.reshape(*lab.shape[:-2], 1, 1), lab.shape)
        else:
            ann, _ = to_canonical(np.asarray(ann, bool), order)
            if ann.shape != lab.shape:
                raise ValueError(f"annotated mask {i} has shape {ann.shape}, its labels {lab.shape}; they must match")
        out.append((img, np.asarray(lab), np.asarray(ann, bool)))
    if not any(a.any() for _, _, a in out):
        raise ValueError("no labels: paint some classes or objects in at least one plane first")
    return out


def _spacings(spacing, data, order: str | None) -> list[tuple[float, ...]]:
    """One voxel size per prepared image, ``[Z]YX``, from one given for all (or none: 1) or a
    list of one per image, each in ``order`` (the caller's axes) when given.
    """
    if spacing is None:
        return [(1.0,) * img.ndim for img, _, _ in data]
    given = list(spacing) if isinstance(spacing, (list, tuple, np.ndarray)) else [spacing]
    one = all(np.ndim(s) == 0 for s in given)  # one voxel size for every image
    if one:
        given = [given] * len(data)
    elif len(given) != len(data):
        raise ValueError(f"spacing holds {len(given)} voxel sizes for {len(data)} images: give a list of one per "
                         "image, in the images' order (e.g. [(1, 1), (0.5, 0.5)]), or one for all (e.g. (1, 1))")
    out = []
    for i, (each, (img, _, _)) in enumerate(zip(given, data)):
        what = "spacing" if one else f"spacing {i}"
        each = tuple(checks.number(s, what, 0, low_open=True) for s in np.atleast_1d(each))
        if len(each) != img.ndim:
            raise ValueError(f"{what} {each} has {len(each)} entries; give one per axis ({img.ndim})")
        out.append(tuple(each[order.index(a)] for a in "ZYX" if a in order) if order is not None else each)
    return out


def at_spacing(data, spacings: Sequence[tuple[float, ...]], target: Sequence[float]) -> list:
    """Prepared data (see :func:`prepare`) of voxel sizes ``spacings`` resampled to ``target``.

    Images linearly (as float32), labels and annotated masks to the nearest voxel. ``target``
    applies to the last axes (a 2D plan's in-plane target leaves Z alone); an axis within
    :data:`~napari_unet.inference.zoom.RESAMPLE_RTOL` of it is left as it is.
    """
    out = []
    for (img, lab, ann), own in zip(data, spacings):
        shape = resampled_shape(img.shape, own, target)
        if shape == img.shape:
            out.append((img, lab, ann))
            continue
        out.append((_zoom(img.astype(np.float32), shape, 1), _zoom(lab, shape, 0),
                    _zoom(ann.astype(np.uint8), shape, 0) > 0))
    return out


def _zoom(a: np.ndarray, shape: tuple[int, ...], order: int) -> np.ndarray:
    """``a`` resampled to ``shape``, pixel edges aligned (as skimage's resize: sizes scale exactly)."""
    return ndi.zoom(a, [n / m for n, m in zip(shape, a.shape)], order=order, mode="nearest", grid_mode=True)


def _budget(max_seconds, max_steps) -> dict:
    if max_seconds is None and max_steps is None:
        return {"steps": 0, "max_seconds": DEFAULT_SECONDS}
    return {"steps": int(max_steps) if max_steps is not None else 0, "max_seconds": max_seconds}


def semantic_plan(data, spacing, classes: dict[int, str] | None, device) -> Plan:
    """The plan for prepared data (see :func:`prepare`) of voxel size ``spacing`` (``[Z]YX``: one
    for all images, or a list of one per image); its target spacing is their median.
    """
    fp = fingerprint([d[0] for d in data], [d[1] for d in data], [d[2] for d in data], spacing)
    unpainted = {v: n for v, n in (classes or {}).items() if v not in fp.label_values}
    if unpainted:  # the network gets no output for them: say so rather than train a model blind to them
        names = ", ".join(f"{v} ({n})" for v, n in unpainted.items())
        warnings.warn(f"class {names} is named but painted nowhere in the annotated region, so the model will not "
                      "learn it; paint it on at least one plane", UserWarning, stacklevel=2)
    return make_plan(fp, classes, gpu=resolve_device(device).type != "cpu")


def new_network(plan: Plan, seed: int = 0) -> UNet:
    """A fresh network of the plan's shape (one input channel, one output per class).

    Its initial weights come from ``seed``: same plan and seed, same network.
    """
    torch.manual_seed(seed)
    return UNet(1, len(plan.label_values), base_channels=plan.base_channels, depth=plan.depth, norm=plan.norm,
                spatial_dims=plan.spatial_dims, pools=plan.pools)


def train_iter(
    images,
    labels,
    *,
    task: str = "semantic",
    annotated=None,
    axes: str | None = None,
    spacing: Sequence[float] | None = None,
    classes: dict[int, str] | None = None,
    max_seconds: float | None = None,
    max_steps: int | None = None,
    init: UNet | str | None = None,
    device: str | torch.device | None = None,
    stop: threading.Event | None = None,
    seed: int = 0,
    base_channels: int | None = None,
    clock: str = "wall",
) -> Generator[TrainProgress, None, UNet]:
    """Train a model for a new task, yielding :class:`~.engine.TrainProgress` after each step.

    Parameters
    ----------
    images, labels
        An image or volume and its labels, or lists of them (``[Z]YX``, one channel).
    task
        ``"semantic"``: label values are classes; ``"instances"``: labels are objects.
    annotated
        Boolean mask(s) of where the labels count; default: every plane holding a label.
    axes
        The images' axes (``"YX"``, ``"ZYX"``, ``"XYZ"`` ...); default YX or ZYX by dimension.
    spacing
        Voxel size along the axes in ``axes`` order (e.g. mm), one for all images or a list of
        one per image; default 1 everywhere. The model learns at the median (per axis), each
        image resampled to it; given with a class model as ``init``, the images are resampled
        to that model's target spacing.
    classes
        Names of the label values, e.g. ``{1: "liver", 2: "lesion"}``; stored in the card.
    max_seconds, max_steps
        Budgets; training ends at whichever comes first (default: 300 seconds).
    init
        A model (or model file) to start from; default: a fresh network of the plan
        (semantic), the shipped nuclei model (instances).
    device
        Where to train; ``None`` picks the fastest available.
    stop
        Set it (from any thread) to end training after the current step.
    seed
        Seeds sampling and initialisation.
    base_channels
        Semantic: the new network's first-level width instead of the plan's (small for tests).
    clock
        ``"cpu"`` counts ``max_seconds`` in CPU seconds per torch thread (benchmarks on a shared machine).

    Returns
    -------
    UNet
        The trained model, its card naming the task, the classes and the plan.
    """
    if task not in TASK_NAMES:
        raise ValueError(f"task must be 'semantic' (classes) or 'instances' (objects), not {task!r}")
    data = prepare(images, labels, annotated, axes)
    order = check_axes(axes, data[0][0].ndim) if axes else None
    spacings = _spacings(spacing, data, order)  # given in the caller's axis order; the data is now [Z]YX
    if isinstance(init, str) or hasattr(init, "__fspath__"):
        init = load_model(init)
    budget = {**_budget(max_seconds, max_steps), "clock": clock}
    if task == "instances":
        return (yield from _instances(data, init, budget, device, stop, seed))
    plan = continued_plan(init, data) if init is not None else None
    if plan is None:
        plan = semantic_plan(data, spacings, classes, device)
    if base_channels is not None and init is None:
        plan = replace(plan, base_channels=checks.number(base_channels, "base_channels", 1, integer=True))
    model = init if init is not None else new_network(plan, seed)
    if model.config.out_channels != len(plan.label_values):
        raise ValueError(f"the model to start from has {model.config.out_channels} outputs but the labels hold "
                         f"{len(plan.label_values)} classes ({', '.join(map(str, plan.label_values))})")
    if model.config.spatial_dims != plan.spatial_dims:
        plan = replace(plan, spatial_dims=model.config.spatial_dims)
    earlier = getattr(init, "card", None)  # a fresh network (as New model passes one) has no card yet
    continuing = earlier is not None and earlier.task == "semantic"  # a class model taught more
    seen = data
    if spacing is not None:  # at the voxel size the network learns at (none given: the images as they are)
        seen = at_spacing(data, spacings, plan.target_spacing[-plan.spatial_dims:])
    source = semantic_source([d[0] for d in seen], [d[1] for d in seen], [d[2] for d in seen], plan)
    sampler = VolumeSampler if plan.spatial_dims == 3 else SemanticSampler
    config = TrainConfig(**budget, batch_size=plan.batch_size, patch_size=plan.patch_size[-1], val_every=25,
                         seed=seed, loss=LossConfig(dice_classes=tuple(range(1, len(plan.label_values))),
                                                    dice_present_only=True))  # rare classes: see LossConfig
    if continuing:  # corrections to a class model: gently, as for objects
        config = replace(config, lr=CONTINUE_LR, warmup_steps=CONTINUE_WARMUP_STEPS, freeze_norm=True)
    result = yield from engine_train_iter(model, source, config, device=device, stop=stop,
                                         batches=lambda src, cfg, rng: sampler(src, plan, rng))
    provenance = _provenance(result, data, spacings)
    if continuing:  # its name and its history go on
        provenance = {**earlier.provenance, "fine_tuned_on": provenance["trained_on"], "fine_tuning": provenance}
    model.card = ModelCard(
        name=earlier.name if continuing else "new classes",
        task="semantic", classes=plan.class_names, channels=("intensity",),
        label_values=plan.label_values, intensity=plan.intensity, plan=plan.to_dict(), provenance=provenance,
    )
    return model


def continued_plan(model: UNet, data) -> Plan | None:
    """The plan a class model was trained with, to go on training it on ``data`` (prepared);
    None for a model without one (objects, or a network not trained here).

    It keeps the model's classes and intensity normalisation, so corrections that show only
    some classes (a few fixed organ borders) teach the same network; a label value the model
    does not know is a ValueError saying which.
    """
    card = model_card(model)
    if card.task != "semantic" or not card.plan:
        return None
    plan = Plan.from_dict(card.plan)
    painted = set()
    for _, lab, ann in data:
        painted |= {int(v) for v in np.unique(lab[ann])}
    unknown = sorted(painted - set(plan.label_values))
    if unknown:
        known = ", ".join(f"{v} ({n})" for v, n in zip(plan.label_values, plan.class_names))
        raise ValueError(f"the labels hold value {', '.join(map(str, unknown))}, which '{card.name}' does not know "
                         f"(its classes: {known}); paint with those values, or train a new model for more classes")
    return plan


def _instances(data, init, budget, device, stop, seed) -> Generator[TrainProgress, None, UNet]:
    """Objects: the annotated planes train the shipped model (or ``init``) on.

    The planes are learnt at the zoom automatic zoom picks for their objects, and the model
    keeps that zoom (as fine-tuning does): learnt at the image's scale, large objects would be
    shrunk at prediction to a size the network never saw. Patches span the annotated part.
    """
    model = init if init is not None else load_model()
    card = model_card(model)
    planes, objects, masks = [], [], []
    for img, lab, ann in data:
        img, lab, ann = (a.reshape(-1, *a.shape[-2:]) for a in (img, lab, ann))
        for z in np.flatnonzero(ann.any(axis=(1, 2))):
            planes.append(img[z]), objects.append(lab[z]), masks.append(ann[z])
    zoom = card.zoom if card.zoom is not None else training_zoom(objects, masks)
    if zoom != 1.0:
        shapes = [zoomed_shape(p.shape, zoom) for p in planes]
        planes = [resample(p[None].astype(np.float32), s)[0] for p, s in zip(planes, shapes)]
        objects = [labels_to_shape(o, s) for o, s in zip(objects, shapes)]
        masks = [labels_to_shape(m.astype(np.int32), s, renumber=False) > 0 for m, s in zip(masks, shapes)]
    source = ArraySource(planes, objects, masks, normalization=card.normalization)
    edge = int(min(256, max(_extent(m) for m in masks) + 16))  # the annotated part and some context
    config = TrainConfig(**budget, patch_size=-(-edge // 16) * 16, val_every=25, seed=seed)
    result = yield from engine_train_iter(model, source, config, device=device, stop=stop)
    model.card = replace(card, name="new objects", zoom=zoom,
                         provenance={**_provenance(result, data, None), "init_provenance": card.provenance})
    return model


def _extent(mask: np.ndarray) -> int:
    """The longer side of the box around a plane's annotated pixels."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1)


def _provenance(result: TrainResult, data, spacings) -> dict:
    planes = sum(int(d[2].reshape(-1, *d[2].shape[-2:]).any(axis=(1, 2)).sum()) for d in data)
    return {
        "trained_on": f"{len(data)} image(s), {planes} annotated plane(s)",
        "spacing": list(target_spacing(spacings)) if spacings else None,  # the median of the images'
        "spacings": [list(s) for s in spacings] if spacings else None,  # each image's own
        "steps": result.steps, "best_step": result.best_step, "seconds": round(result.seconds, 1),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
    }


def train(images, labels, **kwargs) -> UNet:
    """Run :func:`train_iter` to the end; takes the same arguments and returns the model."""
    return run(train_iter(images, labels, **kwargs))
