"""Training batches: cut a window from a sample, augment it, derive targets, stack."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from napari_unet.inference.zoom import auto_zoom
from napari_unet.labels import median_diameter
from napari_unet.training.augment import AugmentConfig, augment, build_transform, random_window
from napari_unet.training.sources import Sample, Source
from napari_unet.training.targets import TargetConfig, make_targets
from napari_unet.windows import crop


@dataclass(frozen=True)
class Batch:
    """Network inputs and loss targets for one step."""

    images: torch.Tensor  # (B, C, P, P) float32
    classes: torch.Tensor  # (B, P, P) int64, IGNORE_INDEX where unannotated
    weights: torch.Tensor  # (B, P, P) float32


class PatchSampler:
    """Turns samples from a :class:`~napari_unet.training.sources.Source` into augmented batches.

    Parameters
    ----------
    source
        Where whole images come from.
    patch_size, batch_size
        Patches are ``patch_size``² and ``batch_size`` of them make a batch.
    augment, targets
        Augmentation ranges and target/weight settings.
    rng
        Draws images and windows (geometry/intensity jitter use torch's generator).
    focus
        For partially annotated images: chance that a window is centred on an
        annotated pixel rather than placed anywhere.
    """

    def __init__(
        self,
        source: Source,
        patch_size: int,
        batch_size: int,
        augment: AugmentConfig = AugmentConfig(),
        targets: TargetConfig = TargetConfig(),
        rng: np.random.Generator | None = None,
        focus: float = 0.9,
    ):
        self.source = source
        self.patch_size = patch_size
        self.batch_size = batch_size
        self.augment_config = augment
        self.target_config = targets
        self.rng = rng if rng is not None else np.random.default_rng()
        self.focus = focus
        self.transform = build_transform(augment, patch_size)

    def patch(
        self, sample: Sample, center: tuple[int, int] | None = None
    ) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """One augmented patch: image tensor, class map, weights; around ``center`` if given."""
        lo, hi = np.log(self.augment_config.scale)
        scale = float(np.exp(self.rng.uniform(lo, hi)))
        if self.augment_config.object_zoom:
            scale *= max(1.0, auto_zoom(median_diameter(sample.labels), sample.labels.shape))
        window = max(8, int(round(self.patch_size / scale)))
        shape = sample.labels.shape
        if center is None and sample.anchors is not None and self.rng.random() < self.focus:
            center = np.unravel_index(sample.anchors[self.rng.integers(sample.anchors.size)], shape)
        corner = random_window(shape, window, self.rng, center)
        annotated = sample.annotated
        if annotated is None:
            annotated = np.ones(shape, dtype=bool)
        image = crop(sample.image, corner, window)
        labels = crop(sample.labels, corner, window)
        ann = crop(annotated, corner, window, fill=False)  # padding is unannotated, not background
        image, labels, ann = augment(image, labels, ann, self.transform)
        classes, weights = self.targets(labels, ann)
        return image, classes, weights

    def targets(self, labels: np.ndarray, annotated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The loss's class map and weights of an augmented patch (instances: interior/boundary)."""
        return make_targets(labels, annotated, self.target_config)

    def __call__(self) -> Batch:
        """One batch of ``batch_size`` augmented patches."""
        patches = [self.patch(self.source.sample(self.rng)) for _ in range(self.batch_size)]
        return Batch(
            torch.stack([p[0] for p in patches]),
            torch.from_numpy(np.stack([p[1] for p in patches])),
            torch.from_numpy(np.stack([p[2] for p in patches])),
        )
