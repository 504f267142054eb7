import numpy as np
import pytest
import torch

from napari_unet.training.augment import AugmentConfig, augment, build_transform
from napari_unet.training.targets import BOUNDARY, IGNORE_INDEX, INTERIOR, TargetConfig, make_targets


def two_touching_squares() -> np.ndarray:
    labels = np.zeros((12, 16), np.int32)
    labels[2:10, 2:8] = 1
    labels[2:10, 8:14] = 2  # shares the column border 7|8 with object 1
    return labels


def test_touching_objects_are_separated_by_boundary():
    classes, weights = make_targets(two_touching_squares())
    assert (classes[2:10, 7] == BOUNDARY).all() and (classes[2:10, 8] == BOUNDARY).all()
    # the contact zone widens the split to two pixels on each side
    assert (classes[2:10, 6] == BOUNDARY).all() and (classes[2:10, 9] == BOUNDARY).all()
    thin, _ = make_targets(two_touching_squares(), config=TargetConfig(contact_boundary=False))
    assert (thin[4:8, 6] == INTERIOR).all()
    assert (classes[4:8, 4:6] == INTERIOR).all() and (classes[4:8, 10:12] == INTERIOR).all()
    assert (classes[0] == 0).all()
    # the interiors of the two objects do not touch: a watershed seeded from them splits them
    from scipy import ndimage as ndi

    assert ndi.label(classes == INTERIOR)[1] == 2
    # contact between the objects weighs more than a free boundary or the background
    assert weights[5, 7] > weights[5, 2] > weights[0, 0] == 1.0


def test_isolated_object_has_thin_inner_boundary_and_no_contact_weight():
    labels = np.zeros((10, 10), np.int32)
    labels[3:7, 3:7] = 5
    classes, weights = make_targets(labels, config=TargetConfig(boundary_weight=2.0))
    assert (classes == BOUNDARY).sum() == 12  # the 4x4 square's ring
    assert (classes == INTERIOR).sum() == 4
    assert set(np.unique(weights)) == {1.0, 2.0}


def test_object_cut_by_the_image_border_has_no_boundary_there():
    labels = np.zeros((8, 8), np.int32)
    labels[:, :4] = 1
    classes, _ = make_targets(labels)
    assert (classes[:, 3] == BOUNDARY).all()
    assert (classes[:, 0] == INTERIOR).all()


def test_unannotated_pixels_are_ignored_with_zero_weight():
    labels = two_touching_squares()
    annotated = np.zeros(labels.shape, bool)
    annotated[:, :8] = True
    classes, weights = make_targets(labels, annotated)
    assert (classes[:, 8:] == IGNORE_INDEX).all() and (weights[:, 8:] == 0).all()
    assert (classes[:, :8] >= 0).all() and (weights[:, :8] > 0).all()


def test_targets_reject_wrong_shapes():
    with pytest.raises(ValueError, match="2D"):
        make_targets(np.zeros((2, 2, 4, 4), np.int32))  # a volume (3D) is fine, four axes are not
    with pytest.raises(ValueError, match="annotated"):
        make_targets(np.zeros((4, 4), np.int32), np.ones((5, 4), bool))


def test_augmentation_moves_image_and_labels_together():
    torch.manual_seed(1)
    labels = np.zeros((64, 64), np.int32)
    labels[10:30, 12:40] = 3
    labels[40:60, 5:20] = 7
    image = (labels > 0).astype(np.float32)[None]
    cfg = AugmentConfig(gamma=(1, 1), contrast=(1, 1), brightness=0, noise=(0, 0), blur_p=0, elastic_p=0.5)
    transform = build_transform(cfg, 48)
    for _ in range(8):
        img, lab, ann = augment(image, labels, np.ones_like(labels, bool), transform)
        assert img.shape == (1, 48, 48) and lab.shape == (48, 48) and ann.dtype == bool
        assert set(np.unique(lab)) <= {0, 3, 7}  # nearest: no invented label values
        inside = lab > 0
        assert img[0].numpy()[inside].mean() > 0.9  # object pixels stay bright
        assert img[0].numpy()[~inside & ann].mean() < 0.1


def test_object_zoom_magnifies_small_objects_as_automatic_zoom_will():
    from dataclasses import replace

    from scipy import ndimage as ndi

    from napari_unet.training.batches import PatchSampler
    from napari_unet.training.sources import ArraySource

    def discs(step, radius):  # discs of ``radius`` px on a grid of ``step`` px, a 192² image
        yy, xx = np.mgrid[:192, :192]
        cy, cx = (yy + step // 2) // step, (xx + step // 2) // step
        inside = (yy - cy * step) ** 2 + (xx - cx * step) ** 2 <= radius**2
        return np.where(inside, cy * 100 + cx + 1, 0).astype(np.int32)

    fixed = AugmentConfig(scale=(1, 1), flips=False, rotate90=False, affine_p=0, elastic_p=0,
                          blur_p=0, gamma=(1, 1), contrast=(1, 1), brightness=0, noise=(0, 0))

    def largest_object(labels, object_zoom):  # pixels of the largest object in a 64² patch
        source = ArraySource([(labels > 0).astype(np.float32)], [labels])
        sampler = PatchSampler(source, 64, 1, replace(fixed, object_zoom=object_zoom),
                               rng=np.random.default_rng(0))
        parts, _ = ndi.label(sampler.patch(source.samples[0])[1] > 0)  # interior + boundary
        return np.bincount(parts.ravel())[1:].max()

    small, large = discs(16, 3), discs(48, 12)  # ~7 px and ~25 px across
    assert largest_object(small, True) > 3 * largest_object(small, False)  # magnified ~1.9x
    assert largest_object(large, True) == largest_object(large, False)  # large: as they are
