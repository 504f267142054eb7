"""The synthetic generator: exact labels, every labelled nucleus drawn, determinism, dtypes."""

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.measure import label as connected_components
from skimage.segmentation import expand_labels

from napari_unet.synth.config import SynthConfig
from napari_unet.synth.images import SynthSample, synth_dataset, synth_image
from napari_unet.synth.sample import make_sample_data, nuclei_sample

SEEDS = range(12)


@pytest.mark.parametrize("seed", SEEDS)
def test_labels_are_exact_instances(seed: int) -> None:
    s = synth_image(seed, (96, 160))
    assert s.image.shape == s.labels.shape == (96, 160)
    assert s.labels.dtype == np.int32
    ids = np.unique(s.labels)
    assert ids[0] == 0 or len(ids) == 0
    assert np.array_equal(ids[ids > 0], np.arange(1, s.labels.max() + 1))  # consecutive
    # each nucleus is one connected piece of a decent size
    n = int(s.labels.max())
    pieces = connected_components(s.labels, connectivity=1)
    assert pieces.max() == n
    assert np.all(np.bincount(s.labels.ravel())[1:] >= SynthConfig().min_area)


@pytest.mark.parametrize("seed", SEEDS)
def test_every_labelled_nucleus_is_drawn(seed: int) -> None:
    """Before noise, each nucleus is brighter than the darker part of its surroundings."""
    s = synth_image(seed, (128, 160), with_clean=True)
    assert s.clean is not None and s.clean.dtype == np.float32
    grown = expand_labels(s.labels, 3)
    ring = np.where(s.labels == 0, grown, 0)
    tested = 0
    for i, box in enumerate(ndi.find_objects(grown), start=1):
        around = s.clean[box][ring[box] == i]
        if around.size < 5:  # enclosed by other nuclei: no background to compare with
            continue
        inside = s.clean[box][s.labels[box] == i].mean()
        # 0.05 of a bright nucleus's brightness (the generator's unit)
        assert inside - np.percentile(around, 20) > 0.05, f"nucleus {i} is not visible"
        tested += 1
    assert tested >= 0.8 * s.labels.max()


def test_images_have_nuclei_and_background() -> None:
    counts = [int(synth_image(seed, (128, 128)).labels.max()) for seed in SEEDS]
    assert min(counts) >= 0 and max(counts) >= 20
    assert np.mean([c > 0 for c in counts]) > 0.7


def test_same_seed_same_sample() -> None:
    a, b = synth_image(7, (64, 80)), synth_image(7, (64, 80))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels)
    c = synth_image(np.random.default_rng(7), (64, 80))
    assert np.array_equal(a.image, c.image)
    d = synth_image(8, (64, 80))
    assert not np.array_equal(a.image, d.image)


def test_dataset_images_are_independent_and_reproducible() -> None:
    first = synth_dataset(4, 3, (64, 64))
    again = synth_dataset(4, 3, (64, 64))
    assert len(first) == 4 and all(isinstance(s, SynthSample) for s in first)
    for a, b in zip(first, again):
        assert np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(first[0].image, first[1].image)
    assert first[0].clean is None  # only on request


def test_dtypes_and_ranges_vary() -> None:
    images = [synth_image(seed, (48, 48)).image for seed in range(40)]
    kinds = {im.dtype for im in images}
    assert kinds == {np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32)}
    uint16_max = [int(im.max()) for im in images if im.dtype == np.uint16]
    assert min(uint16_max) <= 4095 < max(uint16_max)  # 12-bit and 16-bit cameras
    uint8_max = [int(im.max()) for im in images if im.dtype == np.uint8]
    assert min(uint8_max) < 128 and max(uint8_max) == 255  # dim and saturated


def test_dtype_weights_pick_the_dtype() -> None:
    cfg = SynthConfig(dtype_weights=(0.0, 0.0, 0.0, 1.0))
    assert all(synth_image(s, (32, 32), cfg).image.dtype == np.float32 for s in range(5))


def test_shifted_config_has_bigger_nuclei() -> None:
    def median_area(cfg: SynthConfig) -> float:
        areas = [np.bincount(synth_image(s, (128, 128), cfg).labels.ravel())[1:] for s in range(6)]
        return float(np.median(np.concatenate(areas)))

    assert median_area(SynthConfig().shifted()) > 3 * median_area(SynthConfig())


def test_sample_image() -> None:
    small = nuclei_sample((200, 240))
    assert small.image.dtype == np.uint16 and small.image.shape == (200, 240)
    assert small.labels.max() > 5 and small.image.max() <= 4095
    assert np.array_equal(small.image, nuclei_sample((200, 240)).image)
    [(data, meta, kind)] = make_sample_data()
    assert data.shape == (1024, 1024) and data.dtype == np.uint16
    assert meta == {"name": "nuclei (synthetic)"} and kind == "image"
