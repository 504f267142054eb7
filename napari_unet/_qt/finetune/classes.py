"""Fine-tuning a class model (tissues, organs) on corrections of its class map.

The Fine-tune dock takes the same snapshot for a class model as for objects; here it
becomes one training request for the model's own plan (its classes and normalisation,
:func:`napari_unet.training.tasks.continued_plan`), run by the New model dock's job on a
copy of the model: the first ticked image and its class map, the other ticked ones as
more pairs (as New model's "also learn from"). A painted slice (or band) of the first
one's corrections is held out: the old and the new model are scored on it, Dice per
class, and the new one is put in use only when it is better there. The refreshed class map
is written outside what the user corrected, as one undo step.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from napari_unet._qt.finetune.annotations import EDITED, TrainingSet
from napari_unet._qt.finetune.job import TrainStep
from napari_unet._qt.layers import layer_spacing, model_input, write_labels
from napari_unet._qt.train.heldout import Score, score_classes
from napari_unet._qt.train.job import CLASSES, Pair, Request, Trained, check_kind, train_job
from napari_unet.finetune.both import SEGMENTATION
from napari_unet.inference.intensity import normalize_intensity
from napari_unet.model.files import model_card
from napari_unet.model.unet import UNet
from napari_unet.training.plan import Plan
from napari_unet.training.tasks import continued_plan

BETTER_BY = 0.01  # mean held-out Dice the new model must gain to replace the old one


def is_class_model(model) -> bool:
    return model_card(model).task == "semantic"


def class_request(model: UNet, pairs: list[tuple], data: TrainingSet, edits, margin: int, budgets: dict,
                  validate: bool) -> Request:
    """One request from the snapshot of the (image layer, class-map layer) ``pairs``: the first
    pair with something to learn as the main one (a part of it is held out when ``validate``),
    the others in ``more``, each image at its own voxel size and with what was corrected of it.

    With "only regions I edited" what counts is the painted strokes and ``margin`` pixels
    around them (a class map's regions are whole organs: all of one would count otherwise).
    Raises ValueError, saying which image, when one has colour channels, when 2D images and
    volumes are mixed, or when a class map holds a value the model does not know.
    """
    modes = dict(zip(pairs, data.modes))  # the snapshot reads each pair in its own mode
    used = learnt_pairs(data)
    card = model_card(model)
    first, out = used[0][0].name, []
    for image_layer, labels_layer in used:
        source = model_input(image_layer, 1)
        if not out and source.channel_axis is not None:
            raise ValueError(f"'{first}' has colour channels; a class model takes one channel")
        image, labels = np.asarray(source.data), np.array(labels_layer.data)  # a copy: painting goes on
        if out:
            check_kind(image_layer.name, source, first, out[0].image.ndim,
                       f"untick '{image_layer.name}' under 'learn from'")
        if modes[image_layer, labels_layer] == EDITED:
            annotated = near_strokes(edits.edited(labels_layer), margin)
        else:
            annotated = _trained_on(data, labels_layer, labels.shape)
        try:  # the rule training follows, here to say which class map before anything starts
            continued_plan(model, [(image, labels, annotated)])
        except ValueError as exc:
            raise ValueError(f"'{labels_layer.name}': {exc}") from None
        out.append(Pair(image, labels, annotated, layer_spacing(image_layer, source.spatial_axes)))
    main, *more = out
    return Request(main.image, main.labels, CLASSES, dict(zip(card.label_values, card.classes)), main.spacing,
                   max_seconds=budgets["max_seconds"], max_steps=budgets["max_steps"], hold_out=validate,
                   init=copy.deepcopy(model), annotated=main.annotated, more=tuple(more))


def learnt_pairs(data: TrainingSet) -> list[tuple]:
    """The (image layer, class-map layer) pairs the snapshot holds something of, in order: the
    request's first pair, then its ``more``.
    """
    return list(dict.fromkeys((part.image_layer, part.labels_layer) for part in data.parts))


def images_learnt(request: Request) -> str:
    """How many images ``request`` learns from, in words: "1 image", "3 images"."""
    n = 1 + len(request.more)
    return "1 image" if n == 1 else f"{n} images"


def _trained_on(data: TrainingSet, labels_layer, shape: tuple[int, ...]) -> np.ndarray:
    """What the snapshot's parts of ``labels_layer`` cover, as one mask of its shape."""
    out = np.zeros(shape, bool)
    for part in data.parts:
        if part.labels_layer is labels_layer:
            where = out if part.plane is None else out[part.plane]
            where |= True if part.annotated is None else part.annotated
    return out


@dataclass(frozen=True)
class ClassesTuned:
    """The fine-tuned class model and the held-out Dice of the old and the new one."""

    model: UNet
    before: Score | None  # None: too little corrected to hold any out (the new model is used)
    after: Score | None

    @property
    def better(self) -> bool:
        if self.before is None or self.after is None or not self.after.values:
            return True
        return self.after.mean >= self.before.mean + BETTER_BY

    def words(self) -> str:
        """e.g. "on the held-out slice 12: Dice organ 0.80 → 0.86, lesion 0.41 → 0.55"."""
        if self.before is None or self.after is None:
            return "too little corrected to hold some out: all of it was trained on"
        pairs = ", ".join(f"{name} {self.before.values.get(name, float('nan')):.2f} → {v:.2f}"
                          for name, v in self.after.values.items())
        return f"on the held-out {self.after.where}: Dice {pairs or '(no class there)'}"


def classes_job(request: Request, *, device: str, stop: threading.Event) -> Generator[TrainStep, None, ClassesTuned]:
    """:func:`~napari_unet._qt.train.job.train_job` on a copy of the class model, its steps as the
    Fine-tune dock's progress; the old model scored on the same held-out part before.
    """
    old = copy.deepcopy(request.init)
    steps = train_job(request, device=device, stop=stop, score_every=float("inf"))
    try:
        while True:
            try:
                step = next(steps)
            except StopIteration as done:
                trained: Trained = done.value
                break
            yield TrainStep(step.done, step.total, SEGMENTATION, step.record)
    finally:
        steps.close()
    before = None
    if trained.held is not None and trained.score is not None:
        plan = Plan.from_dict(model_card(old).plan)
        normalized = normalize_intensity(request.image, plan.intensity)
        before = score_classes(old, normalized, request.labels, request.annotated, trained.held, plan, 0, device,
                               request.spacing)
    return ClassesTuned(trained.model, before, trained.score)


def write_class_map(layer, new: np.ndarray, protected: np.ndarray) -> int:
    """Write ``new`` class values into ``layer`` outside ``protected`` as one undo step; the pixels changed."""
    current = np.asarray(layer.data)
    merged = np.where(protected, current, new).astype(current.dtype, copy=False)
    return write_labels(layer, merged) or 0


def protected_region(trained_on: np.ndarray, layer, edits, margin: int) -> np.ndarray:
    """What a refresh of ``layer`` leaves alone: the pixels ``trained_on``, and every stroke (also
    those made during training) with ``margin``.
    """
    out = np.array(trained_on, bool)
    edited = edits.edited(layer)
    if edited is not None and edited.shape == out.shape:
        out |= near_strokes(edited, margin)
    return out


def near_strokes(edited: np.ndarray, margin: int) -> np.ndarray:
    """The edited pixels and those within ``margin`` of them in their plane."""
    edited = np.asarray(edited, bool)
    out = np.zeros(edited.shape, bool)
    planes = [edited] if edited.ndim == 2 else list(edited)
    for z, plane in enumerate(planes):
        if plane.any():
            near = ndi.distance_transform_edt(~plane) <= margin
            if edited.ndim == 2:
                out = near
            else:
                out[z] = near
    return out
