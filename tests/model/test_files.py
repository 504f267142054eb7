import json
import os

import pytest
import torch

from napari_unet import ModelFileError, UNet, load_model, save_model
from napari_unet.model.card import ModelCard
from napari_unet.model.files import read_header


def test_round_trip_keeps_weights_config_and_card(tmp_path, tiny_model):
    tiny_model.card = ModelCard(name="demo", channels=("DAPI",), normalization=(2.0, 99.0))
    path = save_model(tiny_model, tmp_path / "m.safetensors", trained_on="synthetic", steps=10)
    loaded = load_model(path)
    x = torch.randn(1, 1, 40, 30)
    with torch.inference_mode():
        assert torch.allclose(tiny_model(x), loaded(x))
    assert loaded.config == tiny_model.config
    assert loaded.card.name == "demo"
    assert loaded.card.channels == ("DAPI",)
    assert loaded.card.normalization == (2.0, 99.0)
    assert loaded.card.provenance == {"trained_on": "synthetic", "steps": 10}


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(ModelFileError, match="nope.safetensors: no such model file"):
        load_model(tmp_path / "nope.safetensors")


def test_corrupt_file_gives_one_clear_error(tmp_path, tiny_model):
    path = save_model(tiny_model, tmp_path / "m.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated download / disk full
    with pytest.raises(ModelFileError, match="m.safetensors"):
        load_model(path)
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ModelFileError, match="junk.safetensors"):
        load_model(tmp_path / "junk.safetensors")


def test_foreign_safetensors_file_is_refused(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(3)}, tmp_path / "other.safetensors")
    with pytest.raises(ModelFileError, match="not a napari-unet model"):
        load_model(tmp_path / "other.safetensors")


def test_pickles_are_never_loaded(tmp_path, tiny_model):
    path = tmp_path / "m.pt"
    torch.save(tiny_model, path)  # a pickle: loading it could run code
    with pytest.raises(ModelFileError):
        load_model(path)


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path, tiny_model, monkeypatch):
    path = save_model(tiny_model, tmp_path / "m.safetensors")
    before = path.read_bytes()

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    other = UNet(1, 3, base_channels=4, depth=2)
    with pytest.raises(OSError):
        save_model(other, path)
    assert path.read_bytes() == before  # the previous model is still there, intact
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_header_is_readable_without_weights(tmp_path, tiny_model):
    path = save_model(tiny_model, tmp_path / "m.safetensors")
    header = read_header(path)
    assert header["config"]["base_channels"] == 4
    json.dumps(header)  # plain data, printable by `napari-unet info`


def test_saved_files_get_ordinary_permissions(tmp_path, tiny_model):
    import os
    import stat

    mask = os.umask(0o022)
    try:
        path = save_model(tiny_model, tmp_path / "m.safetensors")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # readable by others, like any file the user saves
