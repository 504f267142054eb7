"""Class-model batches: a class painted small and once still reaches the network often."""

from dataclasses import replace

import numpy as np
import pytest

from napari_unet.inference.intensity import normalize_intensity
from napari_unet.training.plan import fingerprint, make_plan
from napari_unet.training.semantic import SemanticSampler, VolumeSampler, semantic_source


def _rare_spot(shape) -> tuple[np.ndarray, np.ndarray]:
    """A body (1) over most of every plane, and a spot (2) of a few voxels in one plane's corner."""
    labels = np.zeros(shape, np.uint8)
    labels[..., 4:-4, 4:-4] = 1
    labels[shape[0] // 2, 6:9, 6:9] = 2
    image = np.array([0.0, 1.0, 3.0], np.float32)[labels]
    return image + np.random.default_rng(0).normal(0, 0.1, shape).astype(np.float32), labels


def _share_with_rare(plan, image, labels, batches: int = 16) -> float:
    annotated = np.ones(labels.shape, bool)
    source = semantic_source([image], [labels], [annotated], plan)
    kind = VolumeSampler if plan.spatial_dims == 3 else SemanticSampler
    sampler = kind(source, plan, np.random.default_rng(0))
    hits = [(batch.classes == 2).flatten(1).any(1) for batch in (sampler() for _ in range(batches))]
    return float(np.concatenate([h.numpy() for h in hits]).mean())


@pytest.mark.parametrize(("shape", "spacing", "patch"), [((5, 96, 96), (3.0, 1.0, 1.0), (32, 32)),
                                                         ((24, 48, 48), (1.0, 1.0, 1.0), (4, 16, 16))])
def test_a_rare_class_painted_once_is_in_a_fixed_share_of_the_patches(shape, spacing, patch) -> None:
    image, labels = _rare_spot(shape)
    fp = fingerprint([image], [labels], [np.ones(shape, bool)], spacing)
    plan = replace(make_plan(fp), patch_size=patch, batch_size=4)
    assert plan.spatial_dims == len(patch)
    seen = _share_with_rare(plan, image, labels)
    unforced = _share_with_rare(replace(plan, class_share=0.0), image, labels)
    # a third of the patches centre on a class drawn uniformly of the two: about 1/6 hold the spot
    assert seen >= 0.1 and seen >= 3 * unforced


def test_a_bright_class_rarer_than_the_clip_percentile_keeps_its_contrast() -> None:
    """MR-like images are z-scored without clipping: a bright 0.3 % class is not flattened into the clip value."""
    image, labels = _rare_spot((1, 64, 64))
    fp = fingerprint([image], [labels], [np.ones(labels.shape, bool)], (1.0, 1.0, 1.0))
    x = normalize_intensity(image, make_plan(fp).intensity)
    spot, body = x[labels == 2], x[labels == 1]
    assert spot.std() > 0.5 * body.std()  # its noise (texture) is still there
    assert spot.min() > body.max()
