"""Resume states: a good one restores the run; any bad one is one clear error, never torch's advice."""

import numpy as np
import pytest
import torch

from napari_unet.model.checkpoint import load_state, save_state, state_path
from napari_unet.model.files import ModelFileError
from napari_unet.model.unet import UNet


def _run(base_channels: int = 4):
    torch.manual_seed(0)
    model = UNet(1, 3, base_channels=base_channels, depth=2)
    return model, torch.optim.AdamW(model.parameters(), lr=1e-3), np.random.default_rng(0)


@pytest.fixture
def state_file(tmp_path):
    model, optimizer, rng = _run()
    model(torch.randn(2, 1, 16, 16)).sum().backward()
    optimizer.step()  # optimiser state worth restoring
    path = state_path(tmp_path / "ckpt.safetensors")
    save_state(path, model, optimizer, rng, step=7, seconds=1.5)
    return path


def _refused(path, *fragments) -> str:
    model, optimizer, rng = _run()
    with pytest.raises(ModelFileError) as info:
        load_state(path, model, optimizer, rng)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    assert "weights_only" not in message and "Traceback" not in message
    for fragment in fragments:
        assert fragment in message
    return message


def test_good_state_restores_the_run(state_file):
    model, optimizer, rng = _run()
    info = load_state(state_file.with_name("ckpt.safetensors"), model, optimizer, rng)  # via the model file
    assert info == {"step": 7, "seconds": 1.5}
    assert optimizer.state_dict()["state"]  # the moments came back


def test_missing_state_says_how_to_resume(tmp_path):
    _refused(tmp_path / "gone.state.pt", "no resume state")
    (tmp_path / "dir.state.pt").mkdir()
    _refused(tmp_path / "dir.state.pt", "no resume state")


def test_truncated_state_is_one_clear_error(state_file):
    data = state_file.read_bytes()
    state_file.write_bytes(data[: len(data) // 2])
    _refused(state_file, "not a resume state", "without --resume")
    state_file.write_bytes(b"")
    _refused(state_file, "not a resume state")


class _Foreign:
    """An object a weights-only load refuses (loading it unrestricted would run its code)."""


def test_foreign_or_pickled_state_is_refused_without_torch_advice(tmp_path):
    pickled = tmp_path / "pickled.state.pt"
    torch.save({"model": _Foreign()}, pickled)
    _refused(pickled, "not a resume state")
    junk = tmp_path / "junk.state.pt"
    junk.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    _refused(junk, "not a resume state")
    plain = tmp_path / "plain.state.pt"
    torch.save(UNet(1, 3, base_channels=4, depth=2).state_dict(), plain)  # weights alone, no run state
    _refused(plain, "not a resume state")


def test_state_of_another_network_says_so(state_file):
    model, optimizer, rng = _run(base_channels=8)
    with pytest.raises(ModelFileError, match="for a different network .*'inc.0.weight' has shape"):
        load_state(state_file, model, optimizer, rng)
