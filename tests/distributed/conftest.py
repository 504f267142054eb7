"""Fixtures of the block-wise tests."""

import pytest
from _block_images import threshold_instance_unet

from napari_unet.model.unet import UNet


@pytest.fixture
def threshold_model() -> UNet:
    """A hand-set instance network: bright blobs are objects (see _block_images)."""
    return threshold_instance_unet()


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One torch thread: the tiny network's planes are too small to share out, and on a
    busy machine two threads wait on each other (10x slower)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
