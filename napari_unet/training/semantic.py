"""Class maps from partial labels: training samples and batches for semantic models.

Labels are class maps (each label value a class, 0 the background) that may cover only
part of an image: an ``annotated`` mask says where they count. Outside it the loss sees
:data:`~napari_unet.training.targets.IGNORE_INDEX` (nnU-Net's ignore label), so five
painted planes of a 40-plane volume, or scribbles, are a valid training set.

- 2D plans train on the annotated planes, cut, augmented and batched by
  :class:`SemanticSampler` (the instance sampler's windows and augmentation, class targets);
- 3D plans train on volumes, batched by :class:`VolumeSampler` (3D windows centred on
  annotated voxels, mirroring, intensity jitter).

Both centre a share of their patches (the plan's ``class_share``) on an annotated voxel of
a foreground class drawn uniformly (:class:`ClassCentres`), as nnU-Net forces a third of its
patches to hold foreground, but per class: a lesion painted on one slice of five is then in
a fixed share of the batches, not only where a random window happens to fall on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch

from napari_unet.inference.intensity import normalize_intensity
from napari_unet.training.augment import AugmentConfig, IntensityJitter
from napari_unet.training.batches import Batch, PatchSampler
from napari_unet.training.plan import Plan
from napari_unet.training.sources import ArraySource, Sample
from napari_unet.training.targets import IGNORE_INDEX


def class_indices(labels: np.ndarray, values: Sequence[int]) -> np.ndarray:
    """Label values as output-channel indices (int64); values not in ``values`` become -1."""
    lut = np.full(max(int(labels.max(initial=0)), max(values)) + 1, -1, np.int64)
    lut[list(values)] = np.arange(len(values))
    return lut[labels]


def augment_config(plan: Plan) -> AugmentConfig:
    """The plan's augmentation: AugmentConfig with the plan's changes (tuples from JSON kept)."""
    changes = {k: tuple(v) if isinstance(v, list) else v for k, v in plan.augment.items()}
    return replace(AugmentConfig(), **changes)


def semantic_source(volumes: Sequence[np.ndarray], labels: Sequence[np.ndarray],
                    annotated: Sequence[np.ndarray], plan: Plan) -> ArraySource | VolumeSource:
    """The training samples a plan calls for: annotated planes (2D) or whole volumes (3D).

    Images are normalised with the plan's intensity scheme, each volume as a whole;
    labels become class indices; voxels with a label value unknown to the plan count as
    not annotated.
    """
    planes, maps, masks = [], [], []
    for vol, lab, ann in zip(volumes, labels, annotated):
        x = normalize_intensity(vol, plan.intensity)
        idx = class_indices(np.asarray(lab), plan.label_values)
        ann = np.asarray(ann, bool) & (idx >= 0)
        idx = np.maximum(idx, 0)
        if plan.spatial_dims == 3:
            planes.append(x), maps.append(idx), masks.append(ann)
            continue
        x, idx, ann = (a.reshape(-1, *a.shape[-2:]) for a in (x, idx, ann))
        for z in np.flatnonzero(ann.any(axis=(1, 2))):
            planes.append(x[z]), maps.append(idx[z]), masks.append(ann[z])
    if not masks or not any(m.any() for m in masks):
        raise ValueError("no annotated voxels: paint some labels (or pass an annotated mask) first")
    if plan.spatial_dims == 3:
        return VolumeSource(planes, maps, masks)
    return ArraySource(planes, maps, masks, normalization=None)


class ClassCentres:
    """Where each foreground class is annotated: patch centres that make rare classes common.

    Parameters
    ----------
    samples
        Training samples whose labels are class indices (0 the background).
    classes
        Number of classes (the network's outputs).
    limit
        At most this many voxels are kept per class and sample (drawn once, as nnU-Net does),
        so a densely painted volume costs little memory.
    """

    def __init__(self, samples: Sequence[Sample], classes: int, limit: int = 10_000):
        self.samples = list(samples)
        pick = np.random.default_rng(0)
        self.where: dict[int, list[tuple[int, np.ndarray]]] = {}
        for c in range(1, classes):
            hits = []
            for i, s in enumerate(self.samples):
                mask = s.labels == c if s.annotated is None else (s.labels == c) & s.annotated
                idx = np.flatnonzero(mask)
                if idx.size > limit:
                    idx = np.sort(pick.choice(idx, limit, replace=False))
                if idx.size:
                    hits.append((i, idx))
            if hits:
                self.where[c] = hits

    @property
    def classes(self) -> tuple[int, ...]:
        """The foreground classes (indices) annotated somewhere."""
        return tuple(self.where)

    def draw(self, rng: np.random.Generator) -> tuple[Sample, tuple[int, ...]] | None:
        """A sample and a voxel of a class drawn uniformly (then a sample holding it, then a voxel)."""
        if not self.where:
            return None
        hits = self.where[self.classes[int(rng.integers(len(self.where)))]]
        i, idx = hits[int(rng.integers(len(hits)))]
        sample = self.samples[i]
        return sample, tuple(int(v) for v in np.unravel_index(idx[int(rng.integers(idx.size))], sample.labels.shape))


class SemanticSampler(PatchSampler):
    """2D batches of class targets: the instance sampler's windows and augmentation,
    with each annotated pixel's class as target and its class weight as weight; a share of
    the patches is centred on a class drawn uniformly (see :class:`ClassCentres`).
    """

    def __init__(self, source: ArraySource, plan: Plan, rng: np.random.Generator):
        super().__init__(source, plan.patch_size[-1], plan.batch_size, augment_config(plan), rng=rng)
        self.class_weights = np.asarray(plan.class_weights, np.float32)
        self.class_share = plan.class_share
        self.centres = ClassCentres(source.samples, len(plan.label_values))

    def __call__(self) -> Batch:
        """One batch of ``batch_size`` patches, ``class_share`` of them (on average) centred on a class."""
        patches = []
        for _ in range(self.batch_size):
            drawn = self.centres.draw(self.rng) if self.rng.random() < self.class_share else None
            patches.append(self.patch(*drawn) if drawn else self.patch(self.source.sample(self.rng)))
        return Batch(torch.stack([p[0] for p in patches]),
                     torch.from_numpy(np.stack([p[1] for p in patches])),
                     torch.from_numpy(np.stack([p[2] for p in patches])))

    def targets(self, labels: np.ndarray, annotated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Class indices (IGNORE_INDEX outside the annotation) and class weights."""
        classes = np.where(annotated, labels, IGNORE_INDEX).astype(np.int64)
        return classes, self.class_weights[np.clip(labels, 0, len(self.class_weights) - 1)]


class VolumeSource:
    """Normalised volumes with class-index maps and annotated masks, for 3D training."""

    def __init__(self, volumes: list[np.ndarray], classes: list[np.ndarray], annotated: list[np.ndarray]):
        self.samples = [Sample(v[None].astype(np.float32, copy=False), c, a, np.flatnonzero(a))
                        for v, c, a in zip(volumes, classes, annotated) if a.any()]
        area = np.array([s.anchors.size for s in self.samples], np.float64)
        self.p = area / area.sum()

    def sample(self, rng: np.random.Generator) -> Sample:
        """One volume, drawn in proportion to its annotated voxels."""
        return self.samples[int(rng.choice(len(self.samples), p=self.p))]


def crop3d(array: np.ndarray, corner: Sequence[int], size: Sequence[int], fill=0) -> np.ndarray:
    """The window at ``corner`` of ``array``'s last three axes, ``fill`` where it sticks out."""
    out = np.full(array.shape[:-3] + tuple(size), fill, array.dtype)
    src, dst = [], []
    for c, s, n in zip(corner, size, array.shape[-3:]):
        lo, hi = max(c, 0), min(c + s, n)
        if hi <= lo:
            return out
        src.append(slice(lo, hi)), dst.append(slice(lo - c, hi - c))
    out[(..., *dst)] = array[(..., *src)]
    return out


class VolumeSampler:
    """3D batches: windows centred on annotated voxels (or anywhere), mirrored, intensity-jittered.

    Parameters
    ----------
    source
        A :class:`VolumeSource`.
    plan
        Patch and batch size, class weights, augmentation.
    rng
        Draws volumes and windows (the intensity jitter uses torch's generator).
    focus
        Chance that a window is centred on an annotated voxel.
    """

    def __init__(self, source: VolumeSource, plan: Plan, rng: np.random.Generator, focus: float = 0.9):
        self.source, self.plan, self.rng, self.focus = source, plan, rng, focus
        self.jitter = IntensityJitter(augment_config(plan))
        self.class_weights = np.asarray(plan.class_weights, np.float32)
        self.centres = ClassCentres(source.samples, len(plan.label_values))

    def patch(self, sample: Sample, centre: Sequence[int] | None = None) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """One augmented 3D patch: image tensor, class targets, weights; around ``centre`` if given."""
        size = self.plan.patch_size
        shape = sample.labels.shape
        if centre is None and self.rng.random() < self.focus:
            centre = np.unravel_index(sample.anchors[self.rng.integers(sample.anchors.size)], shape)
        if centre is not None:
            corner = [int(c) - s // 2 for c, s in zip(centre, size)]
        else:
            corner = [int(self.rng.integers(min(0, n - s), max(0, n - s) + 1)) for n, s in zip(shape, size)]
        image = crop3d(sample.image, corner, size)
        labels = crop3d(sample.labels, corner, size)
        ann = crop3d(sample.annotated, corner, size, fill=False)  # outside the volume: not annotated
        for axis in (1, 2):  # in-plane mirroring; Z keeps its direction (slices are ordered)
            if self.rng.random() < 0.5:
                image, labels, ann = np.flip(image, axis + 1), np.flip(labels, axis), np.flip(ann, axis)
        x = torch.from_numpy(np.ascontiguousarray(image))
        x = self.jitter.transform(x, self.jitter.make_params([x]))
        classes = np.where(ann, labels, IGNORE_INDEX).astype(np.int64)
        return x, classes, self.class_weights[labels]

    def __call__(self) -> Batch:
        """One batch of ``plan.batch_size`` patches, ``class_share`` of them (on average) centred on a class."""
        patches = []
        for _ in range(self.plan.batch_size):
            drawn = self.centres.draw(self.rng) if self.rng.random() < self.plan.class_share else None
            patches.append(self.patch(*drawn) if drawn else self.patch(self.source.sample(self.rng)))
        return Batch(torch.stack([p[0] for p in patches]),
                     torch.from_numpy(np.stack([p[1] for p in patches])),
                     torch.from_numpy(np.stack([p[2] for p in patches])))
