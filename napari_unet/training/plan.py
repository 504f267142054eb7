"""Self-configuration: a dataset's fingerprint becomes a training plan (as nnU-Net's planner).

:func:`fingerprint` measures what the data is (shapes, voxel spacing, intensity units, how
much of each class is annotated); :func:`make_plan` turns that into a :class:`Plan`, a plain,
printable record of every choice training then follows: a 2D or 3D network, the target
spacing, patch and batch size from a memory budget, depth, intensity normalisation, class
weights and augmentation. A user never sets a patch size to get a first model; the plan is
stored in the model card and shown by ``napari-unet info``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from napari_unet.inference.zoom import resample_factors
from napari_unet.model.unet import plan_pools

MAX_ANISOTROPY_3D = 2.5  # a 3D network when Z spacing is at most this many times the in-plane one ...
MIN_PLANES_3D = 24  # ... and the volumes have at least this many planes; else a 2D network on planes
# largest 2D patch edge (px): on a CPU, more steps beat more context, and a small class fills more of a
# small patch (phantom, 5 slices, 3 CPU-min: lesion Dice 0.19 with 96 px patches, 0.60 with 64)
MAX_PATCH_2D = {"cpu": 64, "gpu": 256}
MAX_PATCH_3D = {"cpu": (32, 96, 96), "gpu": (48, 160, 160)}  # largest 3D patch (Z, Y, X)
MIN_BATCH = 2  # the memory budget picks the batch size from this ...
MAX_BATCH = {"cpu": 4, "gpu": 12}  # ... to this (a CPU step is slow: many small steps learn faster)
# rare classes weigh more in the cross-entropy, up to this: the patches centred on each painted class
# (class_share) already show a rare class often; a larger weight (10 before) tilted the network towards
# rare classes, which the prior correction at inference only partly undid (a bright class's rim)
MAX_CLASS_WEIGHT = 3.0
BYTES_PER_VOXEL_CHANNEL = 4 * 14  # float32 activations kept for backward, ~14 per channel per voxel (measured)
CT_MIN_HU = -500  # an integer image whose darkest values reach this is taken as CT in Hounsfield units


@dataclass(frozen=True)
class Fingerprint:
    """What the training data is, measured: the input of :func:`make_plan`."""

    shapes: tuple[tuple[int, ...], ...]  # spatial shape of each image ((Z,) Y, X) at the target spacing
    spacing: tuple[float, ...]  # target voxel size ((Z,) Y, X): the images' median, the same unit for every axis
    modality: str  # "CT" (Hounsfield units) or "other" (arbitrary units)
    label_values: tuple[int, ...]  # the classes' label values, 0 (background) first
    class_voxels: tuple[int, ...]  # annotated voxels of each class, in label_values' order
    foreground: tuple[float, float, float, float]  # annotated foreground's 0.5/99.5 percentiles, mean, std
    annotated_planes: int  # Z planes (or images) holding annotation
    spacings: tuple[tuple[float, ...], ...] = ()  # each image's own voxel size ((Z,) Y, X)


@dataclass(frozen=True)
class Plan:
    """Every choice a semantic training run follows; printable, stored in the model card."""

    spatial_dims: int  # 2: planes one by one; 3: volumes in 3D patches
    target_spacing: tuple[float, ...]  # voxel size the network works at ((Z,) Y, X)
    patch_size: tuple[int, ...]  # patch edge per axis ((Z,) Y, X)
    batch_size: int  # patches per step, from the memory budget
    depth: int  # poolings: until the patch is 8 voxels across (at most 4)
    base_channels: int  # first-level width: 16 on a CPU, 32 on a GPU
    norm: str  # "batch": fast on a CPU (channels-last kernels) and what the shipped models use
    pools: tuple[tuple[int, ...], ...] | None  # 3D: per-level kernels from the spacing (plan_pools)
    intensity: dict  # normalisation (see napari_unet.inference.intensity)
    label_values: tuple[int, ...]  # label value of each output channel, 0 first
    class_names: tuple[str, ...]  # name of each output channel
    class_weights: tuple[float, ...]  # cross-entropy weight of each class: rare classes count more
    augment: dict  # augmentation ranges that differ from AugmentConfig's (see training/augment.py)
    memory_mb: int  # the activation memory budget the patch and batch were sized for
    # share of patches centred on an annotated voxel of a foreground class drawn uniformly, so rare
    # classes are in the batches (nnU-Net forces a third to hold foreground; here per class)
    class_share: float = 1 / 3

    def to_dict(self) -> dict:
        """The plan as plain data (JSON), for the model card."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Plan:
        """A plan from :meth:`to_dict`'s data (lists from JSON become tuples)."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("target_spacing", "patch_size", "label_values", "class_names", "class_weights"):
            known[key] = tuple(known[key])
        if known.get("pools") is not None:
            known["pools"] = tuple(tuple(p) for p in known["pools"])
        return cls(**known)

    def describe(self) -> str:
        """The plan in a few lines of words, as ``napari-unet info`` prints it."""
        net = "2D network on planes" if self.spatial_dims == 2 else "3D network on volumes"
        norm = self.intensity.get("scheme")
        lo, hi = self.intensity.get("percentiles", (0.5, 99.5))
        how = ("CT: clip to the foreground's {clip[0]:.0f}..{clip[1]:.0f}, then its mean {mean:.1f} / std {std:.1f}"
               .format(**self.intensity) if norm == "ct" else "per image: z-score" + (
                   f" after clipping to percentiles {lo:g}..{hi:g}" if (lo, hi) != (0, 100) else ""))
        classes = ", ".join(f"{v} {n} (weight {w:.1f})"
                            for v, n, w in zip(self.label_values, self.class_names, self.class_weights))
        return "\n".join([
            f"network: {net}, depth {self.depth}, {self.base_channels} base channels",
            f"target spacing: {' x '.join(f'{s:g}' for s in self.target_spacing)}",
            f"patch: {' x '.join(map(str, self.patch_size))}, batch {self.batch_size} "
            f"(activation budget {self.memory_mb} MB)",
            f"normalisation: {how}",
            f"classes: {classes}",
            f"augmentation: {', '.join(f'{k} {v}' for k, v in self.augment.items()) or 'defaults'}",
        ])


def _percentiles(values: np.ndarray) -> tuple[float, float, float, float]:
    if values.size == 0:
        return (0.0, 1.0, 0.5, 1.0)
    step = max(1, values.size // 2_000_000)
    v = values[::step].astype(np.float64)
    lo, hi = np.percentile(v, (0.5, 99.5))
    return float(lo), float(hi), float(v.mean()), float(v.std())


def target_spacing(spacings: Sequence[Sequence[float]]) -> tuple[float, ...]:
    """The voxel size a network learns at: per axis, the median of the images' (as nnU-Net).

    Axes are matched from the end (Y, X): Z is the median of the volumes' Z spacings.
    """
    n = max(len(s) for s in spacings)
    return tuple(float(np.median([s[len(s) - n + k] for s in spacings if len(s) - n + k >= 0])) for k in range(n))


def resampled_shape(shape: Sequence[int], spacing: Sequence[float], target: Sequence[float]) -> tuple[int, ...]:
    """An image's spatial shape once resampled from ``spacing`` to ``target`` (see :func:`resample_factors`).

    Axes are matched from the end; leading axes without a spacing keep their size.
    """
    factors = (1.0,) * len(shape) + resample_factors(spacing, target)
    return tuple(max(1, int(round(n * f))) for n, f in zip(shape, factors[-len(shape):]))


def per_image(spacing, n: int) -> list[tuple[float, ...]]:
    """``spacing`` as one voxel size per image: one given for all is repeated ``n`` times."""
    if len(spacing) and all(np.ndim(s) == 0 for s in spacing):
        return [tuple(float(s) for s in spacing)] * n
    return [tuple(float(v) for v in s) for s in spacing]


def fingerprint(
    images: Sequence[np.ndarray],
    classes: Sequence[np.ndarray],
    annotated: Sequence[np.ndarray],
    spacing: tuple[float, ...] | Sequence[tuple[float, ...]],
    modality: str | None = None,
) -> Fingerprint:
    """Measure a dataset of images with (partial) class maps.

    Images of different voxel sizes are measured as they will be trained on: shapes and
    class voxels at the target spacing (:func:`target_spacing`), intensities as they are.

    Parameters
    ----------
    images
        Single-channel images or volumes ((Z,) Y, X), in their own units.
    classes
        Label maps of the same shapes: each value a class, 0 the background.
    annotated
        Boolean masks: where the labels count.
    spacing
        Voxel size ((Z,) Y, X) shared by the images, or a list of one per image.
    modality
        "CT" or "other"; ``None`` guesses: integer images reaching below -500 are CT in
        Hounsfield units.
    """
    spacings = per_image(spacing, len(images))
    if len(spacings) != len(images):
        raise ValueError(f"{len(spacings)} spacings for {len(images)} images: give one for all, or one per image")
    target = target_spacing(spacings)
    values = sorted({0, *(int(v) for c, a in zip(classes, annotated) for v in np.unique(c[a]))})
    counts = np.zeros(len(values), np.float64)  # voxels at the target spacing: a fine image counts no more
    fg = []
    for img, lab, ann, own in zip(images, classes, annotated, spacings):
        present, n = np.unique(lab[ann], return_counts=True)
        scale = float(np.prod(resample_factors(own, target)))
        for v, k in zip(present, n):
            counts[values.index(int(v))] += k * scale
        fg.append(np.asarray(img)[ann & (lab > 0)])
    if modality is None:
        integer = all(np.issubdtype(np.asarray(i).dtype, np.integer) for i in images)
        modality = "CT" if integer and min(float(np.min(i)) for i in images) <= CT_MIN_HU else "other"
    planes = sum(int(a.reshape(-1, *a.shape[-2:]).any(axis=(1, 2)).sum()) for a in annotated)
    return Fingerprint(
        tuple(resampled_shape(np.shape(i), own, target) for i, own in zip(images, spacings)), target, modality,
        tuple(values), tuple(int(round(c)) for c in counts), _percentiles(np.concatenate(fg)) if fg else _percentiles(
            np.zeros(0)), planes, tuple(spacings),
    )


def _class_weights(counts: Sequence[int]) -> tuple[float, ...]:
    """Inverse square-root frequency, the commonest class 1, capped at :data:`MAX_CLASS_WEIGHT`."""
    c = np.maximum(np.asarray(counts, np.float64), 1.0)
    return tuple(round(float(w), 2) for w in np.clip(np.sqrt(c.max() / c), 1.0, MAX_CLASS_WEIGHT))


def _fit(edge: int, multiple: int) -> int:
    """``edge`` rounded up to a multiple of ``multiple``."""
    return int(-(-edge // multiple) * multiple)


def make_plan(
    fp: Fingerprint,
    names: dict[int, str] | None = None,
    *,
    gpu: bool = False,
    memory_mb: int | None = None,
) -> Plan:
    """The training plan for a fingerprinted dataset.

    Parameters
    ----------
    fp
        From :func:`fingerprint`.
    names
        Class names by label value; missing ones are "background" (0) and "class <value>".
    gpu
        Training on a GPU: a wider network and a larger memory budget.
    memory_mb
        Activation memory budget for one step; ``None``: 6000 on a GPU, 1500 on a CPU.
    """
    names = names or {}
    kind = "gpu" if gpu else "cpu"
    budget = memory_mb or (6000 if gpu else 1500)
    base = 32 if gpu else 16
    spacing = fp.spacing
    volumes = len(spacing) == 3 and all(len(s) == 3 for s in fp.shapes)
    in_plane = min(spacing[-2:])
    three_d = (volumes and spacing[0] <= MAX_ANISOTROPY_3D * in_plane
               and min(s[0] for s in fp.shapes) >= MIN_PLANES_3D)
    plane_shape = np.median([s[-2:] for s in fp.shapes], axis=0).astype(int)
    if three_d:
        z = int(np.median([s[0] for s in fp.shapes]))
        wanted = (min(z, MAX_PATCH_3D[kind][0]), *(min(int(e), m) for e, m in zip(plane_shape, MAX_PATCH_3D[kind][1:])))
        depth = int(min(4, np.floor(np.log2(max(8, min(wanted[1:])) / 8))))
        pools = plan_pools(spacing, depth)
        multiples = [int(np.prod(axis)) for axis in zip(*pools)]
        patch = tuple(_fit(e, m) for e, m in zip(wanted, multiples))
    else:
        edge = min(MAX_PATCH_2D[kind], int(max(plane_shape)))
        depth = int(min(4, np.floor(np.log2(max(16, edge) / 8))))
        patch, pools = (_fit(edge, 2**depth),) * 2, None
    per_sample = np.prod(patch) * base * BYTES_PER_VOXEL_CHANNEL / 2**20
    batch = int(np.clip(budget // max(per_sample, 1e-3), MIN_BATCH, MAX_BATCH[kind]))
    lo, hi, mean, std = fp.foreground
    if fp.modality == "CT":
        intensity = {"scheme": "ct", "clip": [lo, hi], "mean": mean, "std": std}
        augment = {"contrast": [0.9, 1.1], "gamma": [0.8, 1.25], "brightness": 0.05}
    else:
        # no clipping (nnU-Net's z-score for non-CT): clipping at 99.5 % flattens a bright class that
        # covers less than 0.5 % of the volume (a phantom's fluid) into the clip value
        intensity = {"scheme": "zscore", "percentiles": [0.0, 100.0]}
        # light intensity jitter: a volume's own intensities are what tells apart classes of alike shape
        # (the phantom's organ tip, first seen on an unpainted slice, and its fluid); nnU-Net's ±25 %
        # contrast and gamma 0.7-1.5 blurred that cue: phantom, 5 painted slices, 3 CPU-minutes, seeds
        # 1-4, lesion Dice 0.66-0.78 and the organ tip called fluid in some runs; with these 0.73-0.89
        augment = {"contrast": [0.95, 1.05], "gamma": [0.9, 1.1], "brightness": 0.02}
    # spacing is known: little zoom jitter; no elastic warps on few slices; noise in z-score units
    augment.update(scale=[0.85, 1.18], elastic_p=0.0, noise=[0.0, 0.1], object_zoom=False)  # JSON-plain lists
    return Plan(
        spatial_dims=3 if three_d else 2,
        target_spacing=tuple(spacing if three_d else spacing[-2:]),
        patch_size=tuple(int(p) for p in patch),
        batch_size=batch,
        depth=depth,
        base_channels=base,
        norm="batch",
        pools=pools,
        intensity=intensity,
        label_values=fp.label_values,
        class_names=tuple(names.get(v, "background" if v == 0 else f"class {v}") for v in fp.label_values),
        class_weights=_class_weights(fp.class_voxels),
        augment=augment,
        memory_mb=int(budget),
    )
