"""Did fine-tuning help? The corrected objects, counted right before and after, in words.

A biologist judges a model by its objects, not by a loss: :func:`count_right` segments
the part of an image that holds corrected objects and counts those found (IoU ≥ 0.5 with
the user's outline) and the extra objects drawn where there is none. :class:`Quality`
holds the counts of the old and the new model and says which one to use: the new one
only when it is better on the objects scored.

With enough objects the run trains two halves, each without one half of the annotation's
squares (:func:`napari_unet.training.holdout.halves`), and each half's model is counted on
the squares it never saw: every corrected object and the background around it are judged
by a model that was not trained on them, so the figure says how the run does on parts of
the image it has not seen. With fewer objects every one is trained on; the figure then
says what the model learnt, and says so.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Generator, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from napari_unet.inference.segment import Segmentation, segment_iter
from napari_unet.labels import fraction_inside
from napari_unet.model.unet import UNet
from napari_unet.progress import Progress
from napari_unet.training.evaluation import ValImage
from napari_unet.training.holdout import CONTEXT, wrong_pixels
from napari_unet.training.metrics import iou_pairs

CHECKING = "checking"  # the stage of a check's progress: the models segment the corrections
IOU = 0.5  # an object is "right" when the model's outline overlaps the user's this much
# Without held-out objects, the new model must get at least this many more of the trained-on
# objects right (a count, and a share of them): a better fit alone proves nothing there.
TRAINED_GAIN = (2, 0.2)
# On held-out squares, with as many objects right and made up, the new model's fit-weighted
# score must be this much higher: a tie with outlines a hair closer is noise (on a real image,
# 9 -> 9 of 10 right with a score higher in the third decimal came with AP@0.5 0.835 -> 0.823
# on the other half).
HELD_OUT_GAIN = 0.02


@dataclass(frozen=True)
class Counts:
    """One model on the scored objects."""

    right: int  # user objects the model found (IoU > IOU)
    extra: int  # model objects matching none of the user's (inside the scored part)
    overlap: float = 0.0  # the IoUs of the right ones, summed: how well their outlines fit

    def ap(self, objects: int) -> float:
        """AP at IoU 0.5: right / (objects + extra)."""
        return self.right / max(objects + self.extra, 1)

    def score(self, objects: int) -> float:
        """Panoptic quality: summed IoU of the right objects over objects + extra, halved for
        the misses and extras (AP@0.5 with each hit weighted by its fit, so a check on a
        dozen objects is not a tie whenever the count of right ones is).
        """
        return self.overlap / max(self.right + 0.5 * (objects - self.right) + 0.5 * self.extra, 1)

    def __add__(self, other: Counts) -> Counts:
        """Both counts together (two parts of the objects)."""
        return Counts(self.right + other.right, self.extra + other.extra, round(self.overlap + other.overlap, 4))


@dataclass(frozen=True)
class Quality:
    """The old and the new model on the same corrected objects, and which to use."""

    objects: int  # corrected objects scored
    held_out: bool  # True: each object was counted by a model not trained on it
    before: Counts
    after: Counts

    @property
    def better(self) -> bool:
        """The new model is better on the scored objects: held out, a higher AP@0.5 (objects
        right, against those missed and made up) with a :meth:`Counts.score` (the same with
        each hit weighted by its fit) at least as high, or the same AP@0.5 with a score
        :data:`HELD_OUT_GAIN` higher; trained on, no more extra and :data:`TRAINED_GAIN` more
        right (what it was taught, it fits anyway). A tie keeps the old one.

        Strict on trained-on objects on purpose: on a real image, 1 -> 1 right (a better fit)
        came with AP@0.5 0.81 -> 0.73 on the other half, and 3 -> 4 of 7 right with
        0.81 -> 0.77 (docs/benchmarks.md, Fine-tuning). Held-out squares count what the model
        makes up in their background too, so one more extra there weighs against one more right.
        """
        b, a = self.before, self.after
        if self.held_out:
            ap, score = (a.ap(self.objects), b.ap(self.objects)), (a.score(self.objects), b.score(self.objects))
            return ap[0] >= ap[1] and score[0] >= score[1] + (0.0 if ap[0] > ap[1] else HELD_OUT_GAIN)
        if a.right < b.right or a.extra > b.extra:
            return False
        return a.right - b.right >= max(TRAINED_GAIN[0], math.ceil(TRAINED_GAIN[1] * self.objects))

    @property
    def saturated(self) -> bool:
        """On held-out objects, the old model already found all but at most one and made none
        up: the check has no error left to see fixed, so a tie says nothing either way. (On a
        real image, 16 of 17 and 9 of 10 held-out objects right before: the new models kept
        aside scored AP@0.5 +0.061 and +0.033 on the other half, docs/benchmarks.md.)
        """
        return (self.held_out and self.before.extra == 0 and self.before.right >= self.objects - 1
                and not self.better)

    def words(self) -> str:
        """The figure as a user reads it: "on your 8 corrected objects: 3 → 7 right"."""
        which = (f"your {self.objects} corrected objects, each checked by a model trained without it"
                 if self.held_out else f"your {self.objects} corrected objects (all were trained on)")
        text = f"on {which}: {self.before.right} → {self.after.right} right"
        if self.before.extra or self.after.extra:
            text += f", {self.before.extra} → {self.after.extra} extra"
        return text

    def as_dict(self) -> dict:
        """For a model card's provenance (plain numbers; :meth:`from_dict` reads it back)."""
        return {"objects": self.objects, "held_out": self.held_out, "better": self.better,
                "before": asdict(self.before), "after": asdict(self.after)}

    @classmethod
    def from_dict(cls, d: dict | None) -> Quality | None:
        """The :meth:`as_dict` record back (None when there is none or it is of an older form)."""
        if not d or "before" not in d or not isinstance(d["before"], dict):
            return None
        return cls(int(d["objects"]), bool(d["held_out"]), Counts(**d["before"]), Counts(**d["after"]))


def scored_parts(images: Sequence[np.ndarray], labels: Sequence[np.ndarray],
                 annotated: Sequence[np.ndarray | None], channel_axis: int | None = None) -> list[ValImage]:
    """The part of each image around its annotated objects (with context), to be counted.

    Objects count when most of their pixels are annotated; images without annotated
    objects are left out.
    """
    parts = []
    for image, lab, ann in zip(images, labels, annotated):
        lab = np.asarray(lab)
        ann = np.ones(lab.shape, bool) if ann is None else np.asarray(ann, bool)
        if not (lab[ann] > 0).any():
            continue
        box = tuple(slice(max(0, int(ix.min()) - CONTEXT), int(ix.max()) + 1 + CONTEXT) for ix in np.nonzero(ann))
        img = np.asarray(image)
        axis = None if channel_axis is None else channel_axis % img.ndim
        parts.append(ValImage(_crop(img, box, axis), lab[box], ann[box], channel_axis=axis))
    return parts


def model_errors(model: UNet, images: Sequence[np.ndarray], labels: Sequence[np.ndarray],
                 annotated: Sequence[np.ndarray | None], channel_axis: int | None = None,
                 device=None, stop: threading.Event | None = None
                 ) -> Generator[Progress, None, list[np.ndarray] | None]:
    """Where ``model`` is wrong in each image's annotated part (bool masks of the labels'
    shape: the objects it misses or makes up there, :func:`~napari_unet.training.holdout.wrong_pixels`);
    each image is segmented around its annotation only, with context, at ×1. Progress: stage
    :data:`CHECKING`, images (tiles when there is one). Returns ``None`` when ``stop`` is set
    meanwhile (checked after each tile: a whole 2048² image takes ~13 s on a 2-core CPU, and
    Stop must not wait for it).
    """
    out = []
    for k, (image, lab, ann) in enumerate(zip(images, labels, annotated)):
        lab = np.asarray(lab)
        ann = np.ones(lab.shape, bool) if ann is None else np.asarray(ann, bool)
        box = tuple(slice(max(0, int(ix.min()) - CONTEXT), int(ix.max()) + 1 + CONTEXT) for ix in np.nonzero(ann))
        img = np.asarray(image)
        axis = None if channel_axis is None else channel_axis % img.ndim
        found = np.zeros(lab.shape, np.int32)
        job = segment_iter(_crop(img, box, axis), model, device=device, channel_axis=axis, zoom=1.0)
        segmented = yield from _checked(job, k, len(images), stop)
        if segmented is None:
            return None
        found[box] = segmented.labels
        out.append(wrong_pixels(lab, found, ann))
    return out


def _crop(image: np.ndarray, box: tuple[slice, slice], axis: int | None) -> np.ndarray:
    spatial = iter(box)
    if axis is None and image.ndim == 3:  # RGB(A): channels last
        axis = 2
    return image[tuple(slice(None) if d == axis else next(spatial) for d in range(image.ndim))]


def count_right(model: UNet, parts: Sequence[ValImage], device=None, zoom: float | None = None,
                stop: threading.Event | None = None) -> Generator[Progress, None, tuple[int, Counts] | None]:
    """The objects scored in ``parts`` and ``model``'s counts on them. Progress: stage
    :data:`CHECKING`, parts (tiles when there is one); ``None`` when ``stop`` is set meanwhile.

    An object of the user's counts when at least half of it is annotated; a model object
    counts (right or extra) when at least half of it lies in the annotated part.
    """
    objects = right = extra = 0
    overlap = 0.0
    for k, v in enumerate(parts):
        job = segment_iter(v.image, model, device=device, channel_axis=v.channel_axis, zoom=zoom)
        segmented = yield from _checked(job, k, len(parts), stop)
        if segmented is None:
            return None
        _, _, iou, n_true, n_pred = iou_pairs(_mostly_in(v.labels, v.annotated),
                                              _mostly_in(segmented.labels, v.annotated))
        hits = iou[iou > IOU]  # over 0.5: pairs are one to one
        objects, right, extra = objects + n_true, right + hits.size, extra + n_pred - hits.size
        overlap += float(hits.sum())
    return objects, Counts(right, extra, round(overlap, 4))


def _checked(job: Generator[Progress, None, Segmentation], k: int, n: int,
             stop: threading.Event | None) -> Generator[Progress, None, Segmentation | None]:
    """Run the ``k``-th of ``n`` segmentations of a check: its tiles as progress when it is the
    only one, else one step when it ends; ``None`` (the job closed) when ``stop`` is set.
    """
    while True:
        try:
            step = next(job)
        except StopIteration as end:
            if n > 1:
                yield Progress(k + 1, n, CHECKING)
            return end.value
        if stop is not None and stop.is_set():
            job.close()
            return None
        if n == 1 and step.stage == "predict":  # its tiles (the objects' separation follows, untold)
            yield Progress(step.done, step.total, CHECKING)


def _mostly_in(labels: np.ndarray, annotated: np.ndarray | None) -> np.ndarray:
    if annotated is None:
        return labels
    keep = fraction_inside(labels, annotated) >= 0.5
    keep[0] = True
    return np.where(keep[labels], labels, 0)
