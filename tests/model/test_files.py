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


# --- tampered, incomplete and truncated files: one ModelFileError naming the file and field ---


def _rewrite_header(path, edit) -> None:
    """Rewrite the safetensors JSON header of ``path`` (8-byte little-endian length + JSON), as a hand edit would."""
    data = path.read_bytes()
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + length])
    edit(header)
    raw = json.dumps(header).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data[8 + length :])


def _edit_meta(key: str, **changes):
    """An edit of the JSON held in metadata ``key`` ("config" or "card"); None deletes a field."""

    def edit(header):
        meta = header["__metadata__"]
        value = json.loads(meta[key])
        for name, new in changes.items():
            if new is None:
                del value[name]
            else:
                value[name] = new
        meta[key] = json.dumps(value)

    return edit


def _both_refuse(path, *fragments) -> None:
    """read_header (hence `napari-unet info`) and load_model both give one ModelFileError with ``fragments``."""
    for read in (read_header, load_model):
        with pytest.raises(ModelFileError) as info:
            read(path)
        message = str(info.value)
        assert message.startswith(str(path)) and "\n" not in message
        for fragment in fragments:
            assert fragment in message


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"task": "panoptic"}, "card.task"),
        ({"classes": ["background", "object"]}, "card.classes"),
        ({"classes": "background"}, "card.classes"),
        ({"classes": [0, 1, 2]}, "card.classes"),
        ({"channels": []}, "card.channels"),
        ({"channels": 3}, "card.channels"),
        ({"click_channels": 1}, "card.click_channels"),  # a 1-input network has no room for clicks
        ({"click_channels": -1}, "card.click_channels"),
        ({"click_channels": True}, "card.click_channels"),
        ({"normalization": [99.8, 1.0]}, "card.normalization"),
        ({"normalization": [1.0]}, "card.normalization"),
        ({"normalization": [1.0, 250.0]}, "card.normalization"),
        ({"normalization": ["1", "99"]}, "card.normalization"),
        ({"postprocess": "watershed"}, "card.postprocess"),
        ({"provenance": ["x"]}, "card.provenance"),
        ({"zoom": 100.0}, "card.zoom"),
        ({"zoom": float("nan")}, "card.zoom"),
        ({"zoom": "2"}, "card.zoom"),
        ({"name": 7}, "card.name"),
    ],
)
def test_tampered_card_field_is_named(tmp_path, tiny_model, changes, field):
    path = save_model(tiny_model, tmp_path / "m.safetensors")
    _rewrite_header(path, _edit_meta("card", **changes))
    _both_refuse(path, f"field '{field}'")


def test_card_classes_must_match_the_outputs(tmp_path, tiny_model):
    path = save_model(tiny_model, tmp_path / "m.safetensors")
    _rewrite_header(path, _edit_meta("card", classes=["background", "object"]))
    _both_refuse(path, "field 'card.classes' has 2 names but the network has 3 outputs")


def test_card_that_is_not_a_mapping_or_missing_is_refused(tmp_path, tiny_model):
    path = save_model(tiny_model, tmp_path / "m.safetensors")

    def card_is_a_list(header):
        header["__metadata__"]["card"] = "[1, 2]"

    _rewrite_header(path, card_is_a_list)
    _both_refuse(path, "field 'card'")

    def no_card(header):
        del header["__metadata__"]["card"]

    _rewrite_header(path, no_card)
    _both_refuse(path, "field 'card' is missing")

    def card_not_json(header):
        header["__metadata__"]["card"] = "{not json"

    _rewrite_header(path, card_not_json)
    _both_refuse(path, "field 'card' is not valid JSON")


def test_unknown_and_missing_card_fields_still_load(tmp_path, tiny_model):
    """Newer files (extra fields) and older ones (fields not yet written) load, with defaults."""
    path = save_model(tiny_model, tmp_path / "m.safetensors")
    _rewrite_header(path, _edit_meta("card", colour_map="viridis", zoom=None, postprocess=None))
    model = load_model(path)
    assert model.card.zoom is None and model.card.postprocess == {}
    assert read_header(path)["card"]["colour_map"] == "viridis"  # `info` shows what the file holds


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"depth": None}, "config.depth"),
        ({"in_channels": None}, "config.in_channels"),
        ({"depth": 0}, "config.depth"),
        ({"depth": 40}, "config.depth"),
        ({"depth": "2"}, "config.depth"),
        ({"out_channels": 3.0}, "config.out_channels"),
        ({"in_channels": True}, "config.in_channels"),
        ({"norm": "layer"}, "config.norm"),
        ({"upsample": "nearest"}, "config.upsample"),
    ],
)
def test_tampered_config_field_is_named(tmp_path, tiny_model, changes, field):
    path = save_model(tiny_model, tmp_path / "m.safetensors")
    _rewrite_header(path, _edit_meta("config", **changes))
    _both_refuse(path, f"field '{field}'")


def test_config_from_a_newer_version_asks_for_an_upgrade(tmp_path, tiny_model):
    path = save_model(tiny_model, tmp_path / "m.safetensors")
    _rewrite_header(path, _edit_meta("config", attention=True))
    _both_refuse(path, "field 'config.attention'", "upgrade napari-unet")


def test_absurd_base_channels_fail_fast_without_allocating(tmp_path, tiny_model):
    import time

    path = save_model(tiny_model, tmp_path / "m.safetensors")
    _rewrite_header(path, _edit_meta("config", base_channels=10**6))
    start = time.perf_counter()
    _both_refuse(path, "field 'config.base_channels' is 1000000")
    assert time.perf_counter() - start < 0.5


def test_weights_of_another_network_are_refused_before_loading(tmp_path, tiny_model):
    """A config that agrees with its card but not with the weights (here: wider)."""
    path = save_model(tiny_model, tmp_path / "m.safetensors")
    _rewrite_header(path, _edit_meta("config", base_channels=8))
    _both_refuse(path, "the weights do not match field 'config'", "'inc.0.weight'")


def test_wrong_tensor_shape_is_refused(tmp_path, tiny_model):
    path = save_model(tiny_model, tmp_path / "m.safetensors")

    def reshape_head(header):
        header["head.weight"]["shape"] = [1, 12, 1, 1]  # as many numbers as [3, 4, 1, 1]

    _rewrite_header(path, reshape_head)
    _both_refuse(path, "tensor 'head.weight' has shape [1, 12, 1, 1] where [3, 4, 1, 1] is needed")

    def malformed(header):
        header["head.weight"]["shape"] = "3x4"

    _rewrite_header(path, malformed)
    _both_refuse(path, "tensor 'head.weight' has a malformed entry")


def test_truncated_file_is_caught_by_the_header_alone(tmp_path, tiny_model):
    path = save_model(tiny_model, tmp_path / "m.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[:-4])  # the last bytes of an interrupted copy
    _both_refuse(path, "truncated")
    path.write_bytes(data + b"\x00" * 4)
    _both_refuse(path, "unexpected bytes")
    path.write_bytes(data[:6])
    _both_refuse(path, "not a model file")


def test_unloadable_card_is_refused_when_saving(tmp_path, tiny_model):
    tiny_model.card = ModelCard(classes=("background", "object"))  # the network has 3 outputs
    with pytest.raises(ModelFileError, match="cannot save.*'card.classes' has 2 names"):
        save_model(tiny_model, tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()
