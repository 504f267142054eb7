"""A large volume's route keeps less: each plane scaled as the network takes it, probabilities
as uint8 (0-255), labels built in place; the objects are those of float probabilities."""

from __future__ import annotations

import numpy as np
import pytest
from _qt_helpers import threshold_unet
from scipy import ndimage as ndi

from napari_unet.inference.images import normalize_stack
from napari_unet.inference.instances import InstanceParams, instances_3d
from napari_unet.inference.intensity import scale_plane, stack_range
from napari_unet.inference.predict import as_float, predict, quantize
from napari_unet.inference.segment import labels_from, segment_iter
from napari_unet.inference.zoom import unzoom
from napari_unet.progress import run

BALLS = ((6, 16, 16), (6, 16, 46), (6, 46, 30))


@pytest.fixture(scope="module")
def model():
    return threshold_unet()


def balls(shape=(12, 64, 64), centres=BALLS, radius=6.0) -> np.ndarray:
    """Bright balls on a dark, slightly noisy volume."""
    zz, yy, xx = np.indices(shape, dtype=np.float32)
    volume = np.random.default_rng(0).normal(10, 1, shape).astype(np.float32)
    for cz, cy, cx in centres:
        volume[(zz - cz) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] += 100
    return volume


def _dim_top(rng) -> np.ndarray:
    """A uint16 volume whose last plane holds only dim noise: it must stay dark, not stretched."""
    volume = rng.normal(200, 20, (5, 40, 50))
    volume[:4, 10:30, 10:30] += 3000
    volume[4] = rng.normal(100, 5, (40, 50))
    return volume.clip(0, 65535).astype(np.uint16)


def test_planes_are_scaled_as_the_whole_volume(rng):
    volume = _dim_top(rng)
    whole = normalize_stack(volume, None)
    ranges = stack_range(volume, None)
    for z in range(len(volume)):
        assert np.array_equal(scale_plane(volume[z][None], ranges)[0], whole[z])
    assert scale_plane(volume[4][None], ranges).max() < 0.1  # one scale for all planes: the dim one stays dim
    with pytest.raises(ValueError, match="NaN"):
        stack_range(np.full((2, 8, 8), np.nan, np.float32), None)


def test_predicting_plane_by_plane_matches_the_scaled_volume(tiny_model, rng):
    volume = _dim_top(rng)
    ranges = np.repeat(stack_range(volume, None)[None], len(volume), axis=0)
    before = predict(normalize_stack(volume, None), tiny_model, device="cpu", normalized=True, tile_size=32)
    after = predict(volume, tiny_model, device="cpu", ranges=ranges, tile_size=32)
    assert np.array_equal(before, after)
    stored = predict(volume, tiny_model, device="cpu", ranges=ranges, tile_size=32, dtype=np.uint8)
    assert stored.dtype == np.uint8 and np.abs(as_float(stored) - before).max() <= 0.5 / 255 + 1e-6


def test_uint8_probabilities_threshold_at_one_half_as_the_floats(rng):
    p = rng.random((3, 4, 30, 30), dtype=np.float32)
    q = quantize(p)
    assert np.abs(as_float(q) - p).max() <= 0.5 / 255 + 1e-6
    assert np.array_equal(q > 0.5 * 255, p > 0.5)  # rounding keeps each value on its side of 1/2


def _ball_probabilities(shape=(12, 64, 64)) -> np.ndarray:
    """(3, Z, Y, X) probabilities of the balls: interiors, a boundary rim, background around."""
    inside = balls(shape) > 50
    core = ndi.binary_erosion(inside, iterations=2)
    probs = np.zeros((3, *shape), np.float32)
    probs[1] = np.where(core, 0.8, 0.05)
    probs[2] = np.where(inside & ~core, 0.7, 0.05)
    probs[0] = 1.0 - probs[1] - probs[2]
    return probs


def test_uint8_probabilities_make_the_same_3d_objects():
    probs = _ball_probabilities()
    params = InstanceParams(min_size=1)
    floats = instances_3d(probs, params, (2.0, 1.0, 1.0))
    assert floats.max() == 3
    assert np.array_equal(instances_3d(quantize(probs), params, (2.0, 1.0, 1.0)), floats)
    # at a zoom: each plane brought to the volume's pixels as it is thresholded
    zoomed = np.stack([np.stack([np.kron(plane, np.ones((2, 2), np.float32)) for plane in c]) for c in probs])
    whole = instances_3d(unzoom(zoomed, probs.shape[1:]), params)
    assert np.array_equal(instances_3d(zoomed, params, shape=probs.shape[1:]), whole)
    assert np.array_equal(instances_3d(quantize(zoomed), params, shape=probs.shape[1:]), whole)


def test_a_volume_keeps_uint8_probabilities_that_re_threshold(model):
    volume = balls()
    result = run(segment_iter(volume, model, axes="ZYX", zoom=1, device="cpu"))
    assert result.probabilities.dtype == np.uint8 and result.labels.max() == 3
    params = InstanceParams()
    again = labels_from(result.probabilities, params, "instances", volume.shape, result.axes, result.spacing)
    assert np.array_equal(again, result.labels)
    as_floats = labels_from(as_float(result.probabilities), params, "instances", volume.shape, result.axes,
                            result.spacing)
    assert np.array_equal(as_floats, result.labels)
    for cz, cy, cx in BALLS:  # still one id per ball through its planes
        assert len(np.unique(result.labels[:, cy, cx][result.labels[:, cy, cx] > 0])) == 1


def test_a_series_of_volumes_numbers_objects_across_time_points(model):
    series = np.stack([balls(), balls(centres=BALLS[:2])])
    result = run(segment_iter(series, model, axes="TZYX", zoom=1, device="cpu"))
    first, second = result.labels
    assert first.max() == 3 and np.unique(second[second > 0]).tolist() == [4, 5]
