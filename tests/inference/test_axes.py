"""Axes known, not guessed: 3D objects through planes, time series frame by frame, one progress bar."""

from __future__ import annotations

import numpy as np
import pytest
from _qt_helpers import threshold_unet

from napari_unet import segment
from napari_unet.inference.segment import MEASURE_PLANES, segment_iter
from napari_unet.progress import run

BALLS = ((6, 16, 16), (6, 16, 46), (6, 46, 30))


def balls(shape=(12, 64, 64), centres=BALLS, radius=6.0, spacing=(1.0, 1.0, 1.0)) -> np.ndarray:
    """Bright balls (in physical units) on a dark, slightly noisy volume."""
    zz, yy, xx = np.indices(shape, dtype=np.float32)
    volume = np.random.default_rng(0).normal(10, 1, shape).astype(np.float32)
    for cz, cy, cx in centres:
        inside = ((zz - cz) * spacing[0]) ** 2 + ((yy - cy) * spacing[1]) ** 2 + ((xx - cx) * spacing[2]) ** 2
        volume[inside <= radius**2] += 100
    return volume


@pytest.fixture(scope="module")
def model():
    return threshold_unet()


def test_a_3d_object_keeps_one_id_through_its_planes(model):
    volume = balls()
    labels = segment(volume, model, axes="ZYX", zoom=1, device="cpu")
    assert labels.shape == volume.shape and labels.max() == 3
    for cz, cy, cx in BALLS:
        ids = np.unique(labels[:, cy, cx][labels[:, cy, cx] > 0])
        assert len(ids) == 1 and (labels == ids[0]).any(axis=(1, 2)).sum() >= 9  # one id in 9+ planes
    planes = segment(volume, model, zoom=1, device="cpu")  # no axes: planes one by one, as before
    assert planes.max() > 3 * 9


@pytest.mark.parametrize("axes, shape, spatial", [
    ("YX", (48, 64), (48, 64)),
    ("ZYX", (6, 48, 64), (6, 48, 64)),
    ("TYX", (3, 48, 64), (3, 48, 64)),
    ("TZYX", (2, 6, 48, 64), (2, 6, 48, 64)),
    ("YXC", (48, 64, 3), (48, 64)),
    ("CYX", (3, 48, 64), (48, 64)),
    ("ZCYX", (6, 2, 48, 64), (6, 48, 64)),
    ("XYZ", (64, 48, 6), (64, 48, 6)),
])
def test_every_axes_string_gives_labels_in_the_images_own_order(model, axes, shape, spatial):
    image = np.random.default_rng(1).random(shape).astype(np.float32)
    if "C" in axes and shape[axes.index("C")] == 2:  # two channels for a one-channel model: refused
        with pytest.raises(ValueError, match="expects 1 channel"):
            segment(image, model, axes=axes, device="cpu")
        return
    assert segment(image, model, axes=axes, zoom=1, device="cpu").shape == spatial


def test_an_object_moved_in_the_image_order_moves_in_the_labels(model):
    volume = balls()
    as_xyz = segment(volume.transpose(2, 1, 0), model, axes="XYZ", zoom=1, device="cpu")
    as_zyx = segment(volume, model, axes="ZYX", zoom=1, device="cpu")
    assert np.array_equal(as_xyz.transpose(2, 1, 0) > 0, as_zyx > 0)


def test_time_points_are_segmented_in_3d_with_ids_unique_across_time(model):
    series = np.stack([balls(), balls(centres=BALLS[:2])])
    labels = segment(series, model, axes="TZYX", zoom=1, device="cpu")
    assert len(np.unique(labels[0])) - 1 == 3 and len(np.unique(labels[1])) - 1 == 2
    assert not set(np.unique(labels[0])[1:]) & set(np.unique(labels[1])[1:])


def test_a_time_series_is_measured_on_a_few_planes_with_one_bar_that_never_restarts():
    from napari_unet.synth.sample import nuclei_sample

    frames = np.stack([nuclei_sample((96, 96), seed=s).image for s in range(8)])
    steps = []
    result = run(segment_iter(frames, axes="TYX", device="cpu"), steps.append)
    bar = [s for s in steps if s.stage in ("measuring", "planes")]
    assert {s.total for s in bar} == {MEASURE_PLANES + 8}  # the plan is known from the start
    assert [s.done for s in bar] == sorted(s.done for s in bar) and bar[-1].done == bar[-1].total
    assert sum(s.stage == "measuring" for s in bar) and result.labels.shape == frames.shape


def test_bad_axes_and_spacing_say_what_to_give(model):
    volume = np.zeros((4, 32, 32), np.float32)
    for axes, message in (("ZY", "name 2 axes"), ("QYX", "at most once"), ("ZZX", "at most once"), (3, "string")):
        with pytest.raises((ValueError, TypeError), match=message):
            segment(volume, model, axes=axes)
    with pytest.raises(ValueError, match="not both"):
        segment(volume, model, axes="ZYX", channel_axis=0)
    for spacing in ((1, 1), (0, 1, 1), "zyx"):
        with pytest.raises((ValueError, TypeError), match="spacing"):
            segment(volume, model, axes="ZYX", spacing=spacing)


def test_anisotropic_spacing_splits_touching_balls_by_physical_distance():
    """Two touching balls whose interiors are found apart stay two objects, split where they meet."""
    from napari_unet.inference.instances import InstanceParams, instances_3d

    spacing = (3.0, 1.0, 1.0)
    shape = (10, 40, 60)
    zz, yy, xx = np.indices(shape, dtype=np.float32)
    centres = ((5, 20, 20), (5, 20, 38))
    dist = [np.sqrt(((zz - z) * 3) ** 2 + (yy - y) ** 2 + (xx - x) ** 2) for z, y, x in centres]
    foreground = (dist[0] <= 10) | (dist[1] <= 10)  # they overlap between x = 28 and 30
    interior = (dist[0] <= 5) | (dist[1] <= 5)
    probs = np.stack([~foreground, interior, foreground & ~interior]).astype(np.float32)
    labels = instances_3d(probs, InstanceParams(min_relative_size=0.0), spacing)
    assert labels.max() == 2 and labels[5, 20, 20] != labels[5, 20, 38]
    assert labels[5, 20, 28] == labels[5, 20, 20] and labels[5, 20, 30] == labels[5, 20, 38]  # split at the middle
