"""Where training samples come from: arrays in memory, a folder of pairs, or the generator.

Every source has ``sample(rng) -> Sample``: one whole image, already normalised the
way prediction normalises it, with its instance labels and an optional annotated
mask. :class:`~napari_unet.training.batches.PatchSampler` cuts, augments and batches them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from napari_unet import checks
from napari_unet.inference.images import normalize, to_planes
from napari_unet.io import IMAGE_SUFFIXES, LOSSY_SUFFIXES, read_image
from napari_unet.synth.config import SynthConfig
from napari_unet.synth.images import synth_dataset, synth_image

MASK_SUFFIX = "_masks"  # Cellpose's naming: cell01.tif + cell01_masks.tif


@dataclass(frozen=True)
class Sample:
    """One normalised training image with its labels."""

    image: np.ndarray  # (C, H, W) float32, normalised like prediction normalises
    labels: np.ndarray  # (H, W) integer instance labels, 0 = background
    annotated: np.ndarray | None = None  # (H, W) bool; None = every pixel annotated
    anchors: np.ndarray | None = None  # flat indices of annotated pixels (for partial masks)


class Source(Protocol):
    """Anything that hands out training samples."""

    def sample(self, rng: np.random.Generator) -> Sample:
        """One training image, drawn with ``rng``."""
        ...


def _as_chw(image: np.ndarray, channels: int, channel_axis: int | None) -> np.ndarray:
    planes, spatial = to_planes(image, channels, channel_axis)
    if len(spatial) != 2:
        raise ValueError(
            f"training images must be 2D (with an optional channel axis), got spatial shape "
            f"{spatial}; pass single planes (e.g. stack[z])"
        )
    return planes[0]


class ArraySource:
    """Images and labels held in memory (napari layer data, a loaded folder, ...).

    Parameters
    ----------
    images, labels
        Matching sequences; each image (H, W) or with a channel axis, any dtype and
        size (small ones are padded as unannotated, big ones are cropped).
    annotated
        Optional bool masks: pixels outside them are ignored by the loss.
    channels
        Input channels of the model to be trained.
    channel_axis
        The images' channel axis, if any.
    normalization
        Percentiles mapped to 0 and 1, as in the model card; ``None``: the images are
        normalised already (a semantic plan's scheme, see :mod:`.semantic`).
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        labels: Sequence[np.ndarray],
        annotated: Sequence[np.ndarray | None] | None = None,
        *,
        channels: int = 1,
        channel_axis: int | None = None,
        normalization: tuple[float, float] | None = (1.0, 99.8),
    ):
        if len(images) != len(labels) or not images:
            raise ValueError(f"need as many label images as images (got {len(images)} and {len(labels)})")
        annotated = list(annotated) if annotated is not None else [None] * len(images)
        if len(annotated) != len(images):
            raise ValueError(f"got {len(annotated)} annotated masks for {len(images)} images")
        self.samples: list[Sample] = []
        for i, (img, lab, ann) in enumerate(zip(images, labels, annotated)):
            chw = _as_chw(np.asarray(img), channels, channel_axis)
            chw = normalize(chw, *normalization) if normalization else chw.astype(np.float32, copy=False)
            lab = np.asarray(lab)
            if lab.shape != chw.shape[1:]:
                raise ValueError(f"image {i} has spatial shape {chw.shape[1:]}, its labels {lab.shape}")
            anchors = None
            if ann is not None:
                ann = np.asarray(ann, dtype=bool)
                if ann.shape != lab.shape:
                    raise ValueError(f"image {i}: annotated mask {ann.shape} != labels {lab.shape}")
                anchors = np.flatnonzero(ann) if not ann.all() else None
                if anchors is not None and anchors.size == 0:
                    continue  # nothing annotated: nothing to learn from this image
            self.samples.append(Sample(chw, lab, ann, anchors))
        if not self.samples:
            raise ValueError("no annotated pixels in any image: annotate some objects first")
        # Draw images in proportion to their annotated area, so a big image is seen more often.
        area = np.array([s.labels.size if s.anchors is None else s.anchors.size for s in self.samples])
        self.p = area / area.sum()

    def __len__(self) -> int:
        return len(self.samples)

    def sample(self, rng: np.random.Generator) -> Sample:
        """One image, drawn in proportion to its annotated area."""
        return self.samples[int(rng.choice(len(self.samples), p=self.p))]


class SynthSource:
    """The synthetic nuclei generator, fresh images or a recycled pool.

    Parameters
    ----------
    config
        A :class:`napari_unet.synth.config.SynthConfig`; ``None`` = its defaults (widest ranges).
    shape
        Size of each generated image.
    pool
        0: a new image for every sample. N > 0: generate N images up front (seeded by
        ``seed``) and recycle them; augmentation makes each use different.
    seed
        Seed of the pool (fresh images draw from the sampler's generator instead).
    normalization
        Percentiles mapped to 0 and 1.
    """

    def __init__(
        self,
        config=None,
        shape: tuple[int, int] = (256, 256),
        pool: int = 0,
        seed: int = 0,
        normalization: tuple[float, float] = (1.0, 99.8),
    ):
        self.config = config if config is not None else SynthConfig()
        self.shape = tuple(shape)
        self.normalization = normalization
        self.pool = [
            self._to_sample(s) for s in synth_dataset(pool, seed, self.shape, self.config)
        ] if pool else []

    def _to_sample(self, s) -> Sample:
        image = normalize(np.asarray(s.image, dtype=np.float32), *self.normalization)
        return Sample(image[None], np.asarray(s.labels))

    def sample(self, rng: np.random.Generator) -> Sample:
        """A pool image, or a freshly generated one."""
        if self.pool:
            return self.pool[int(rng.integers(len(self.pool)))]
        return self._to_sample(synth_image(rng, self.shape, self.config))


def find_pairs(folder: str | os.PathLike) -> list[tuple[Path, Path]]:
    """Image / label-image pairs in ``folder``.

    Two layouts are recognised: ``name.tif`` beside ``name_masks.tif`` (any of
    .tif/.tiff/.png), or images in ``folder`` with labels of the same name in
    ``folder/masks/`` (or ``labels/``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder of training images")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    by_stem = {p.stem: p for p in files}
    pairs = []
    for p in files:
        if p.stem.endswith(MASK_SUFFIX):
            continue
        mask = by_stem.get(p.stem + MASK_SUFFIX)
        if mask is None:
            for sub in ("masks", "labels"):
                hits = [q for q in (folder / sub).glob(p.stem + ".*") if q.suffix.lower() in IMAGE_SUFFIXES]
                if hits:
                    mask = hits[0]
                    break
        if mask is not None:
            pairs.append((p, mask))
    if not pairs:
        raise FileNotFoundError(
            f"{folder}: no image/mask pairs found; name label images '<name>{MASK_SUFFIX}.tif' "
            "next to '<name>.tif', or put them under a 'masks/' subfolder with the same names"
        )
    return pairs


def load_folder(
    folder: str | os.PathLike,
    *,
    ignore_value: int | None = None,
    channels: int = 1,
    channel_axis: int | None = None,
    normalization: tuple[float, float] = (1.0, 99.8),
) -> ArraySource:
    """Load every image/mask pair of ``folder`` (see :func:`find_pairs`) as an :class:`ArraySource`.

    Label images hold instance ids with 0 as background; pixels equal to
    ``ignore_value`` are treated as unannotated (ignored by the loss).
    """
    images, labels, annotated = [], [], []
    for image_path, mask_path in find_pairs(folder):
        if mask_path.suffix.lower() in LOSSY_SUFFIXES:
            raise ValueError(f"{mask_path}: label images must be saved losslessly (TIFF or PNG); JPEG changes "
                             "the label values at object borders")
        lab = read_image(mask_path)
        if lab.ndim != 2:
            raise ValueError(f"{mask_path}: labels must be a 2D image, got shape {lab.shape}")
        ann = None
        if ignore_value is not None:
            ann = lab != ignore_value
            lab = np.where(ann, lab, 0)
        lab = checks.label_image(lab, f"{mask_path}: the labels")  # ImageJ's float32 labels are fine
        images.append(read_image(image_path))
        labels.append(lab.astype(np.int32))
        annotated.append(ann)
    return ArraySource(
        images, labels, annotated, channels=channels, channel_axis=channel_axis,
        normalization=normalization,
    )
