"""ONNX Runtime as the backend: the same answers as PyTorch, the graph exported once."""

import numpy as np
import pytest
import tifffile
import torch

from napari_unet import predict, save_model, segment
from napari_unet.cli.main import main
from napari_unet.model.onnx_runtime import _fingerprint, onnx_network
from napari_unet.model.unet import UNet


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One cache for the module (laid out as the user cache folder): the tiny model's graph is
    exported once, then found, by the API and the CLI alike.
    """
    folder = tmp_path_factory.mktemp("user-cache") / "onnx"
    folder.mkdir()
    return folder


@pytest.mark.slow
def test_onnx_backend_gives_pytorchs_answers_and_exports_once(tiny_model, rng, cache):
    image = rng.random((70, 90)).astype(np.float32)  # not a multiple of the network's 4: padded as UNet pads
    net = onnx_network(tiny_model, cache=cache)
    graphs = list(cache.glob("*.onnx"))
    assert len(graphs) == 1
    assert np.abs(predict(image, net, tile_size=64) - predict(image, tiny_model, tile_size=64)).max() < 1e-4
    assert np.array_equal(segment(image, net), segment(image, tiny_model))
    stamp = graphs[0].stat().st_mtime_ns
    onnx_network(tiny_model, cache=cache)  # the same weights: the cached graph
    assert [g.stat().st_mtime_ns for g in cache.glob("*.onnx")] == [stamp]


def test_other_weights_get_their_own_graph(tiny_model):
    torch.manual_seed(1)
    other = UNet(1, 3, base_channels=4, depth=2)
    assert _fingerprint(other) != _fingerprint(tiny_model)
    with torch.no_grad():
        other.load_state_dict(tiny_model.state_dict())
    assert _fingerprint(other) == _fingerprint(tiny_model)


@pytest.mark.slow
def test_cli_backend_onnx_writes_the_torch_backends_masks(tiny_model, rng, tmp_path, cache, monkeypatch, capsys):
    monkeypatch.setenv("NAPARI_UNET_CACHE_DIR", str(cache.parent))
    model = save_model(tiny_model, tmp_path / "tiny.safetensors")
    tifffile.imwrite(tmp_path / "a.tif", (rng.random((64, 80)) * 255).astype(np.uint8))
    for backend in ("torch", "onnx"):
        args = ["segment", str(tmp_path / "a.tif"), "-o", str(tmp_path / backend), "--model", str(model),
                "--backend", backend]
        assert main(args) == 0, capsys.readouterr().err
    torch_masks, onnx_masks = (tifffile.imread(tmp_path / b / "a_masks.tif") for b in ("torch", "onnx"))
    assert np.array_equal(torch_masks, onnx_masks)
    assert [g.name for g in cache.glob("*.onnx")] == [f"{_fingerprint(tiny_model)}.onnx"]  # the CLI found it
