"""Images of different voxel sizes train one model, each resampled to the median spacing (as nnU-Net)."""

import numpy as np
import pytest

from napari_unet import train
from napari_unet.training import tasks
from napari_unet.training.plan import fingerprint, target_spacing
from napari_unet.training.tasks import at_spacing, prepare, semantic_plan

TINY = {"base_channels": 4, "device": "cpu", "max_steps": 1}


def _disks(pixel: float, edge_mm: float = 48.0) -> tuple[np.ndarray, np.ndarray]:
    """The same scene (disks 16 mm across on a body, in a square ``edge_mm`` a side) drawn at
    ``pixel`` mm per pixel: class 1 the body, class 2 the disks.
    """
    n = int(round(edge_mm / pixel))
    y, x = (np.mgrid[:n, :n] + 0.5) * pixel
    labels = np.zeros((n, n), np.uint8)
    labels[(y - 24) ** 2 + (x - 24) ** 2 < 20**2] = 1
    for cy, cx in [(16, 16), (30, 30)]:
        labels[(y - cy) ** 2 + (x - cx) ** 2 < 8**2] = 2
    image = np.array([0.0, 0.5, 1.0], np.float32)[labels] + 0.05 * np.random.default_rng(0).standard_normal((n, n))
    return image.astype(np.float32), labels


def _seen(monkeypatch) -> list:
    """Record the images, labels and masks the sampler is built from."""
    seen = []

    def recording(volumes, labels, annotated, plan):
        seen.append((list(volumes), list(labels), list(annotated)))
        return source(volumes, labels, annotated, plan)

    source = tasks.semantic_source
    monkeypatch.setattr(tasks, "semantic_source", recording)
    return seen


def test_one_spacing_per_image_brings_the_objects_to_one_size(monkeypatch) -> None:
    coarse, fine = _disks(1.0), _disks(0.5)  # the same disks, 8 and 16 px in radius
    seen = _seen(monkeypatch)
    model = train([coarse[0], fine[0]], [coarse[1], fine[1]], spacing=[(1.0, 1.0), (0.5, 0.5)], **TINY)

    assert tuple(model.card.plan["target_spacing"]) == (0.75, 0.75)  # the median
    [(images, labels, masks)] = seen
    assert [lab.shape for lab in labels] == [(64, 64), (64, 64)]  # 48 mm at 0.75 mm
    disks = [(lab == 2).sum() for lab in labels]
    assert disks[0] == pytest.approx(disks[1], rel=0.05)  # one object size, not two
    assert disks[0] == pytest.approx(2 * np.pi * (8 / 0.75) ** 2, rel=0.1)  # two disks of 8 mm radius
    assert all(m.shape == lab.shape and m.all() for m, lab in zip(masks, labels))  # masks follow (order 0)
    assert images[1].shape == (64, 64)
    assert model.card.provenance["spacings"] == [[1.0, 1.0], [0.5, 0.5]]
    assert model.card.provenance["spacing"] == [0.75, 0.75]


def test_the_target_spacing_is_the_median_of_the_images() -> None:
    spacings = [(3.0, 1.0, 1.0), (2.0, 0.5, 0.5), (5.0, 0.8, 0.8)]
    assert target_spacing(spacings) == (3.0, 0.8, 0.8)
    assert target_spacing([(1.0, 1.0), (0.5, 0.5)]) == (0.75, 0.75)  # an even count: the middle two's mean
    images = [np.zeros((8, 40, 40), np.float32)] * 3
    labels = [np.ones((8, 40, 40), np.uint8)] * 3
    masks = [np.ones((8, 40, 40), bool)] * 3
    fp = fingerprint(images, labels, masks, spacings)
    assert fp.spacing == (3.0, 0.8, 0.8) and fp.spacings == tuple(spacings)
    assert fp.shapes == ((8, 50, 50), (5, 25, 25), (13, 40, 40))  # as they will be trained on
    data = prepare(images, labels)
    assert semantic_plan(data, spacings, None, "cpu").target_spacing == (0.8, 0.8)  # few planes: a 2D plan


def test_a_spacing_list_of_the_wrong_length_is_refused_in_words() -> None:
    coarse, fine = _disks(1.0), _disks(0.5)
    with pytest.raises(ValueError, match=r"spacing holds 3 voxel sizes for 2 images: give a list of one per image"):
        train([coarse[0], fine[0]], [coarse[1], fine[1]], spacing=[(1, 1), (0.5, 0.5), (1, 1)], **TINY)
    with pytest.raises(ValueError, match=r"spacing 1 \(0.5,\) has 1 entries; give one per axis \(2\)"):
        train([coarse[0], fine[0]], [coarse[1], fine[1]], spacing=[(1, 1), (0.5,)], **TINY)


def test_a_2d_plan_resamples_in_plane_only_and_close_spacings_are_left_alone() -> None:
    volume = np.random.default_rng(0).normal(size=(6, 40, 40)).astype(np.float32)
    labels = np.zeros(volume.shape, np.uint8)
    labels[2, 10:30, 10:30] = 1
    [data] = prepare(volume, labels)
    [(img, lab, ann)] = at_spacing([data], [(2.0, 0.5, 0.5)], (1.0, 1.0))  # a 2D plan's target: Z left alone
    assert img.shape == lab.shape == ann.shape == (6, 20, 20) and img.dtype == np.float32
    assert set(np.unique(lab)) == {0, 1} and ann[2].all() and not ann[1].any()  # nearest: no new values, planes kept
    [(img, lab, _)] = at_spacing([data], [(2.0, 0.5, 0.5)], (1.0, 1.0, 1.0))  # a 3D plan's: Z too
    assert img.shape == lab.shape == (12, 20, 20)
    [same] = at_spacing([data], [(1.05, 0.95, 0.95)], (1.0, 1.0, 1.0))  # within 10 %: as it is
    assert all(a is b for a, b in zip(same, data))


def test_a_spacing_list_follows_the_axes_given() -> None:
    volume = np.random.default_rng(0).normal(size=(40, 40, 6)).astype(np.float32)  # X Y Z
    labels = np.zeros(volume.shape, np.uint8)
    labels[10:30, 10:30, 2] = 1
    model = train([volume, volume], [labels, labels], axes="XYZ", spacing=[(1, 1, 2), (0.5, 0.5, 4)], **TINY)
    assert model.card.provenance["spacings"] == [[2, 1, 1], [4, 0.5, 0.5]]  # as [Z]YX
    assert tuple(model.card.plan["target_spacing"]) == (0.75, 0.75)


def test_a_3d_plan_resamples_along_z_too(monkeypatch) -> None:
    rng = np.random.default_rng(0)
    volumes, labels = [], []
    for planes in (30, 60):  # the same 30 mm deep at 1 and at 0.5 mm
        labels.append(np.zeros((planes, 32, 32), np.uint8))
        labels[-1][:, 8:24, 8:24], labels[-1][:, :4] = 1, 2
        volumes.append(labels[-1] + 0.1 * rng.standard_normal(labels[-1].shape).astype(np.float32))
    seen = _seen(monkeypatch)
    model = train(volumes, labels, spacing=[(1.0, 1.0, 1.0), (0.5, 1.0, 1.0)], **TINY)
    assert model.config.spatial_dims == 3 and tuple(model.card.plan["target_spacing"]) == (0.75, 1.0, 1.0)
    [(_, maps, _)] = seen
    assert [m.shape for m in maps] == [(40, 32, 32), (40, 32, 32)]  # 30 mm at 0.75 mm
