"""A 2D model on a near-isotropic volume also sees its ZY and ZX planes, averaged with the XY ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_unet import load_model
from napari_unet.inference.orientations import near_isotropic
from napari_unet.inference.predict import as_float
from napari_unet.inference.segment import segment_iter
from napari_unet.progress import run


@pytest.fixture
def volume(rng) -> np.ndarray:
    """Two nuclei, one cut by the top plane, in a noisy (Z, Y, X) volume."""
    zz, yy, xx = np.indices((8, 12, 16), dtype=np.float32)
    bright = (zz - 4) ** 2 + (yy - 6) ** 2 + (xx - 5) ** 2 < 12
    bright |= (zz - 1) ** 2 + (yy - 6) ** 2 + (xx - 12) ** 2 < 12
    return (100 * bright + rng.normal(20, 5, bright.shape)).astype(np.float32)


@pytest.fixture(scope="module")
def model():
    return load_model()  # the shipped 2D nuclei model: a random network answers ~the same everywhere


@pytest.fixture(autouse=True)
def one_thread():
    """Hundreds of tiny side planes: with two threads on a busy 2-core machine each pass
    waits on the other thread (100x slower); the answers do not depend on it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _probabilities(volume, model, **kwargs) -> np.ndarray:
    # a volume's probabilities are kept as uint8 (0-255): read as 0-1, each within 1/510
    return as_float(run(segment_iter(volume, model, axes="ZYX", zoom=1, device="cpu", **kwargs)).probabilities)


def test_the_three_orientations_turn_with_the_volume(model, volume):
    # with the 8 views per plane the network's answer turns with each plane, so averaged over
    # XY, ZY and ZX planes the answer for a volume with Z and Y swapped is the answer swapped
    # (a side plane put back along the wrong axes would break this)
    probs = _probabilities(volume, model, tta=True, orientations=True)
    swapped = _probabilities(np.ascontiguousarray(volume.transpose(1, 0, 2)), model, tta=True, orientations=True)
    assert probs.shape == (3, 8, 12, 16)
    assert np.allclose(probs.sum(0), 1.0, atol=1.5 / 255)  # three values rounded to 1/255
    assert np.allclose(swapped.transpose(0, 2, 1, 3), probs, atol=1 / 255)  # one step of rounding


def test_averaged_by_default_only_for_near_isotropic_voxels(model, volume):
    assert near_isotropic((1.4, 1.0, 1.0)) and near_isotropic((0.7, 1.0, 1.0))
    assert not near_isotropic((1.6, 1.0, 1.0)) and not near_isotropic((3.0, 0.5, 0.5))
    averaged = _probabilities(volume, model, orientations=True, spacing=(1.2, 1.0, 1.0))
    assert np.array_equal(_probabilities(volume, model, spacing=(1.2, 1.0, 1.0)), averaged)
    xy_only = _probabilities(volume, model, orientations=False, spacing=(3.0, 1.0, 1.0))
    assert np.array_equal(_probabilities(volume, model, spacing=(3.0, 1.0, 1.0)), xy_only)
    assert np.array_equal(_probabilities(volume, model), xy_only)  # spacing unknown: Z may be coarse
    assert not np.allclose(averaged, xy_only, atol=0.05)
