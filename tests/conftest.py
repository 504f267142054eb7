import numpy as np
import pytest
import torch

from napari_unet.model.unet import UNet


@pytest.fixture
def tiny_model() -> UNet:
    """A small random instance model (3 classes): fast enough for any test."""
    torch.manual_seed(0)
    return UNet(1, 3, base_channels=4, depth=2).eval()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
