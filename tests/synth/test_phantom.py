"""The medical phantom: nested classes, a rare lesion, units per modality, seeds, spacing."""

from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_unet.synth.phantom import PhantomConfig, synth_phantom

SMALL = PhantomConfig(shape=(20, 80, 80), spacing=(6.0, 2.0, 2.0))  # same anatomy, coarser grid


@pytest.mark.parametrize("seed", range(4))
def test_classes_nest_like_anatomy(seed: int) -> None:
    p = synth_phantom(seed, SMALL)
    assert p.labels.dtype == np.uint8 and p.labels.shape == p.image.shape == SMALL.shape
    assert p.classes == {1: "body", 2: "organ", 3: "fluid", 4: "lesion"}
    counts = np.bincount(p.labels.ravel(), minlength=5)
    assert np.all(counts[1:] > 0), counts  # every class is there
    assert counts[4] < 0.1 * counts[2]  # the lesion is the small, rare class
    lesion = p.labels == 4
    ring = ndi.binary_dilation(lesion) & ~lesion
    assert np.mean(p.labels[ring] == 2) > 0.5  # lesions sit inside the organ


def test_mr_contrast_and_units() -> None:
    p = synth_phantom(0, SMALL)
    assert p.image.dtype == np.float32 and p.image.min() >= 0  # magnitude image
    means = [float(p.image[p.labels == k].mean()) for k in range(5)]
    # T2-like: outside dark, fluid brightest, organ brighter than body, lesion darker than organ
    assert means[0] < means[4] < means[2] < means[3] and means[1] < means[2]


def test_ct_is_in_hounsfield_units() -> None:
    p = synth_phantom(0, replace(SMALL, modality="CT"))
    assert p.image.dtype == np.int16
    air = np.median(p.image[p.labels == 0])
    assert -1050 < air < -950  # air
    for k in (1, 2, 3, 4):  # soft tissue and fluid within -100..200 HU
        assert -100 < np.median(p.image[p.labels == k]) < 200


def test_seed_decides_everything() -> None:
    a, b, c = synth_phantom(3, SMALL), synth_phantom(3, SMALL), synth_phantom(4, SMALL)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels)
    assert (a.labels != c.labels).mean() > 0.02  # shapes vary with the seed


def test_spacing_and_affine_describe_the_grid() -> None:
    p = synth_phantom(1, SMALL)
    assert p.spacing == (6.0, 2.0, 2.0)
    assert np.array_equal(p.affine, np.diag([6.0, 2.0, 2.0, 1.0]))
    # the anatomy is laid out in mm: a finer grid of the same field of view shows the same body
    fine = synth_phantom(1, replace(SMALL, shape=(40, 160, 160), spacing=(3.0, 1.0, 1.0)))
    body_mm3 = [np.count_nonzero(q.labels) * np.prod(q.spacing) for q in (p, fine)]
    assert body_mm3[0] == pytest.approx(body_mm3[1], rel=0.1)


def test_default_size_and_bad_modality() -> None:
    p = synth_phantom(0)
    assert p.image.shape == (40, 160, 160) and p.spacing == (3.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="MR.*CT"):
        synth_phantom(0, replace(SMALL, modality="PET"))
