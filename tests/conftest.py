from pathlib import Path

import numpy as np
import pytest
import torch

from napari_unet.model.unet import UNet

QT_TESTS = Path(__file__).parent / "_qt"


def pytest_collection_modifyitems(items) -> None:
    """Every test under tests/_qt drives a napari viewer: mark it ``gui``."""
    for item in items:
        if QT_TESTS in Path(item.path).parents:
            item.add_marker(pytest.mark.gui)


@pytest.fixture(autouse=True)
def settings_folder(tmp_path_factory, monkeypatch):
    """Remembered options go to a folder of the test's own: no test sees another's, nor the developer's."""
    folder = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("NAPARI_UNET_CONFIG_DIR", str(folder))
    return folder


@pytest.fixture(autouse=True)
def recovery_folder(tmp_path_factory, monkeypatch):
    """Autosaved masks go to a folder of the test's own, never the developer's real one."""
    folder = tmp_path_factory.mktemp("recovery")
    monkeypatch.setenv("NAPARI_UNET_RECOVERY_DIR", str(folder))
    return folder


@pytest.fixture(autouse=True)
def no_onnx_graphs(tmp_path_factory, monkeypatch):
    """Clicks run in PyTorch (``NAPARI_UNET_ONNX=0``), so that no answer depends on whether a
    background export of a graph has finished; graphs go to a folder of the test's own. The
    tests of that path turn it back on.
    """
    monkeypatch.setenv("NAPARI_UNET_ONNX", "0")
    monkeypatch.setenv("NAPARI_UNET_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def tiny_model() -> UNet:
    """A small random instance model (3 classes): fast enough for any test."""
    torch.manual_seed(0)
    return UNet(1, 3, base_channels=4, depth=2).eval()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
