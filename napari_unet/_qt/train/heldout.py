"""What the New model widget scores while it trains: one painted slice (or a band of a
painted image) kept out of training, and its score.

No Qt here: arrays in, a :class:`Score` out. A volume with two or more painted slices
gives up its middle painted slice; a 2D image (or a volume painted on one slice) gives up
the bottom quarter of its painted rows. Classes are scored with Dice per class, objects
with AP@0.5, on the held-out voxels the user painted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_unet.inference.classes import class_probabilities
from napari_unet.inference.predict import predict_iter
from napari_unet.inference.segment import segment_iter
from napari_unet.inference.zoom import spacing_zoom
from napari_unet.progress import run
from napari_unet.training.metrics import average_precision
from napari_unet.training.plan import Plan

MIN_ROWS = 32  # painted rows needed before a band of a single slice is held out (a quarter of them)


@dataclass(frozen=True)
class HeldOut:
    """The part of the painting kept out of training: a slice of a volume, or rows of a 2D plane."""

    plane: int | None  # Z index in the volume; None: a 2D image
    rows: slice  # rows of that plane (every row for a whole slice)

    def describe(self) -> str:
        if self.plane is None:
            return f"rows {self.rows.start}-{self.rows.stop - 1}"
        whole = self.rows == slice(None)
        return f"slice {self.plane}" + ("" if whole else f", rows {self.rows.start}-{self.rows.stop - 1}")

    def index(self) -> tuple:
        """Index of the held-out voxels in a ``[Z]YX`` array."""
        return (self.rows,) if self.plane is None else (self.plane, self.rows)


def hold_out(annotated: np.ndarray) -> tuple[np.ndarray, HeldOut | None]:
    """Split an annotated mask (``[Z]YX``) into what is trained on and what is scored.

    Returns the training mask (the held-out voxels removed) and the held-out part, or the
    mask unchanged and None when too little is painted to spare any.
    """
    planes = np.flatnonzero(annotated.reshape(-1, *annotated.shape[-2:]).any(axis=(1, 2)))
    if annotated.ndim == 3 and len(planes) >= 2:
        held = HeldOut(int(planes[len(planes) // 2]), slice(None))
    elif len(planes) == 1:
        plane = annotated if annotated.ndim == 2 else annotated[planes[0]]
        rows = np.flatnonzero(plane.any(axis=1))
        if len(rows) < MIN_ROWS:
            return annotated, None
        start = int(rows[-len(rows) // 4])
        held = HeldOut(None if annotated.ndim == 2 else int(planes[0]), slice(start, int(rows[-1]) + 1))
    else:
        return annotated, None
    train = annotated.copy()
    train[held.index()] = False
    return train, held


@dataclass(frozen=True)
class Score:
    """A held-out figure: Dice per class (classes) or AP@0.5 (objects), at a training step."""

    step: int
    metric: str  # "Dice" or "AP@0.5"
    values: dict[str, float]  # class name -> Dice, or {"objects": AP@0.5}
    where: str = ""  # what was scored, in words ("slice 20")

    @property
    def mean(self) -> float:
        return float(np.mean(list(self.values.values()))) if self.values else float("nan")

    def text(self) -> str:
        """The figure in words: "held-out slice 20, step 40: Dice body 0.97, organ 0.81"."""
        if self.metric == "Dice":
            figure = "Dice " + (", ".join(f"{name} {v:.2f}" for name, v in self.values.items()) or "(no class on it)")
        else:
            figure = f"AP@0.5 {self.mean:.2f}"
        return f"held-out {self.where}, step {self.step}: {figure}"


def dice_per_class(pred: np.ndarray, true: np.ndarray, classes: dict[int, str]) -> dict[str, float]:
    """Dice of each class present in ``true`` (background left out), by name."""
    out = {}
    for value, name in classes.items():
        if value == 0:
            continue
        a, b = pred == value, true == value
        if b.any():
            out[name] = float(2 * (a & b).sum() / (a.sum() + b.sum()))
    return out


def score_classes(model, normalized: np.ndarray, labels: np.ndarray, annotated: np.ndarray, held: HeldOut,
                  plan: Plan, step: int, device=None, spacing=None) -> Score:
    """Dice per class on the held-out painted voxels, from a class model's prediction.

    ``normalized`` is the whole image scaled as the plan says; a 3D network sees a slab of
    its patch depth around the held-out slice. With the image's ``spacing`` the network
    sees it at the plan's target pixel size, as Segment will run it. Leaves the model in
    eval mode (the prediction puts it there).
    """
    if held.plane is None:
        x, pick = normalized, slice(None)
    elif model.config.spatial_dims == 3:
        depth = plan.patch_size[0]
        z0 = max(0, min(held.plane - depth // 2, normalized.shape[0] - depth))
        x, pick = normalized[z0:z0 + depth], held.plane - z0
    else:
        x, pick = normalized[held.plane], slice(None)
    zoom = spacing_zoom(spacing, plan.target_spacing) if spacing else 1.0
    probs = class_probabilities(run(predict_iter(x, model, device=device, normalized=True, zoom=zoom)),
                                plan.class_weights)
    if model.config.spatial_dims == 3 and held.plane is not None:
        probs = probs[:, pick]
    pred = np.asarray(plan.label_values)[np.argmax(probs, axis=0)][held.rows]
    where = annotated[held.index()]
    classes = dict(zip(plan.label_values, plan.class_names))
    return Score(step, "Dice", dice_per_class(pred[where], labels[held.index()][where], classes), held.describe())


def score_objects(model, image: np.ndarray, labels: np.ndarray, held: HeldOut, step: int, device=None) -> Score:
    """AP@0.5 of an objects model on the held-out plane (or rows), at the image's own zoom."""
    plane = image if held.plane is None else image[held.plane]
    truth = labels if held.plane is None else labels[held.plane]
    found = run(segment_iter(plane, model, device=device, zoom=1.0)).labels
    ap = float(average_precision(truth[held.rows], found[held.rows], (0.5,))[0])
    return Score(step, "AP@0.5", {"objects": ap}, held.describe())
