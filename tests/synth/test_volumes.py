"""The synthetic 3D nuclei: exact labels, visible nuclei, spacing, anisotropy, determinism, speed."""

import time
from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.measure import label as connected_components
from skimage.segmentation import expand_labels

from napari_unet.synth.volumes import SynthVolume, VolumeConfig, synth_volume, synth_volumes

SEEDS = range(8)
SHAPE = (24, 96, 96)


@pytest.mark.parametrize("seed", SEEDS)
def test_labels_are_exact_3d_instances(seed: int) -> None:
    v = synth_volume(seed, SHAPE)
    assert v.image.shape == v.labels.shape == SHAPE
    assert v.labels.dtype == np.int32 and v.image.dtype in (np.uint16, np.float32)
    n = int(v.labels.max())
    assert np.array_equal(np.unique(v.labels[v.labels > 0]), np.arange(1, n + 1))  # consecutive
    # each nucleus is one face-connected 3D piece of a decent size
    assert connected_components(v.labels, connectivity=1).max() == n
    assert np.all(np.bincount(v.labels.ravel())[1:] >= VolumeConfig().min_voxels)


@pytest.mark.parametrize("seed", SEEDS)
def test_every_labelled_nucleus_is_brighter_than_its_surroundings(seed: int) -> None:
    v = synth_volume(seed, SHAPE, with_clean=True)
    assert v.clean is not None and v.clean.dtype == np.float32
    grown = expand_labels(v.labels, 2)
    ring = np.where(v.labels == 0, grown, 0)
    tested = 0
    for i, box in enumerate(ndi.find_objects(grown), start=1):
        around = v.clean[box][ring[box] == i]
        if around.size < 10:  # enclosed by other nuclei: no background to compare with
            continue
        inside = v.clean[box][v.labels[box] == i].mean()
        # 0.05 of a bright nucleus's brightness (the generator's unit)
        assert inside - np.percentile(around, 20) > 0.05, f"nucleus {i} is not visible"
        tested += 1
    assert tested >= 0.8 * v.labels.max()


def test_volumes_have_nuclei_clusters_and_both_dtypes() -> None:
    volumes = [synth_volume(seed, SHAPE) for seed in range(12)]
    assert np.mean([v.labels.max() > 0 for v in volumes]) > 0.8 and max(v.labels.max() for v in volumes) >= 20
    assert {v.image.dtype for v in volumes} == {np.dtype(np.uint16), np.dtype(np.float32)}
    touching = [np.any((v.labels[:, 1:] != v.labels[:, :-1]) & (v.labels[:, 1:] > 0) & (v.labels[:, :-1] > 0))
                for v in volumes]
    assert sum(touching) >= 3  # touching clusters, not only isolated nuclei


def test_spacing_is_within_the_configured_range() -> None:
    cfg = VolumeConfig()
    ratios = []
    for seed in range(20):
        z, y, x = synth_volume(seed, (8, 32, 32)).spacing
        assert y == x and cfg.pixel_size[0] <= y <= cfg.pixel_size[1]
        ratios.append(z / y)
    assert all(cfg.z_ratio[0] - 1e-9 <= r <= cfg.z_ratio[1] + 1e-9 for r in ratios)
    assert max(ratios) - min(ratios) > 2  # drawn per volume, across the range


def test_same_seed_same_volume() -> None:
    a, b = synth_volume(7, (16, 48, 48)), synth_volume(7, (16, 48, 48))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels) and a.spacing == b.spacing
    c = synth_volume(np.random.default_rng(7), (16, 48, 48))
    assert np.array_equal(a.image, c.image)
    assert not np.array_equal(a.image, synth_volume(8, (16, 48, 48)).image)


def test_set_volumes_depend_only_on_seed_and_index() -> None:
    three, two = synth_volumes(3, 11, (12, 40, 40)), synth_volumes(2, 11, (12, 40, 40))
    assert all(isinstance(v, SynthVolume) and v.clean is None for v in three)
    for a, b in zip(three, two):
        assert np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(three[0].image, three[1].image)


def _extents(labels: np.ndarray) -> np.ndarray:
    """(z, y, x) voxel extents of the nuclei that do not touch the first or last plane."""
    boxes = [b for b in ndi.find_objects(labels) if b is not None]
    ext = np.array([[s.stop - s.start for s in b] for b in boxes if 0 < b[0].start and b[0].stop < labels.shape[0]])
    return ext.reshape(-1, 3)


@pytest.mark.parametrize("ratio, low, high", [(1.0, 0.75, 1.3), (3.0, 0.2, 0.6)])
def test_nuclei_span_fewer_voxels_along_coarse_z(ratio: float, low: float, high: float) -> None:
    cfg = VolumeConfig(z_ratio=(ratio, ratio), size=(14.0, 18.0))
    ext = np.concatenate([_extents(v.labels) for v in synth_volumes(4, 5, (32, 96, 96), cfg)])
    assert len(ext) >= 10
    z_over_y = np.median(ext[:, 0]) / np.median(ext[:, 1])
    assert low < z_over_y < high  # about 1/ratio (plus a voxel of rounding)


def test_blur_is_longer_along_z() -> None:
    """On an isotropic grid, only the PSF tells Z from Y: edges are softer along Z."""
    cfg = replace(VolumeConfig(), z_ratio=(1.0, 1.0), psf_axial=(3.0, 3.0), psf_sigma=(1.2, 1.2))
    for seed in range(3):
        clean = synth_volume(seed, (32, 64, 64), cfg, with_clean=True).clean
        assert np.abs(np.diff(clean, axis=0)).mean() < 0.8 * np.abs(np.diff(clean, axis=1)).mean()


def test_attenuation_dims_deeper_planes() -> None:
    # equal, bright nuclei (none lifted above the visibility floor), no background, dense
    quiet = replace(VolumeConfig(), background=(0.0, 0.0), haze=(0.0, 0.0), photons=(3000.0, 3000.0),
                    brightness_spread=(0.0, 0.0), coverage=(0.3, 0.3))
    clean = [synth_volume(4, (24, 64, 64), replace(quiet, attenuation=(a, a)), with_clean=True).clean
             for a in (0.0, 0.6)]
    signal = clean[0] > 0.2
    kept = [np.median(clean[1][z][signal[z]] / clean[0][z][signal[z]]) for z in range(24) if signal[z].sum() > 20]
    assert len(kept) == 24
    assert kept[0] == pytest.approx(1.0, abs=0.02) and kept[-1] == pytest.approx(0.4, abs=0.02)
    assert np.all(np.diff(kept) < 0)  # dimmer with every plane deeper


def test_speed_of_a_default_volume(capsys) -> None:
    synth_volume(0)  # warm-up: imports, allocator
    times = []
    for seed in range(5):
        start = time.perf_counter()
        synth_volume(seed)
        times.append(time.perf_counter() - start)
    with capsys.disabled():
        print(f"\nsynth_volume 32x128x128: median {np.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms")


def test_shape_must_be_3d() -> None:
    with pytest.raises(ValueError, match="planes, rows, columns"):
        synth_volume(0, (64, 64))
