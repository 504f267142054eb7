import numpy as np
import pytest
import tifffile

from napari_unet.cli.main import main
from napari_unet.model.files import load_model, read_header


def test_cli_trains_a_tiny_synthetic_model_end_to_end(tmp_path, capsys):
    out = tmp_path / "tiny.safetensors"
    args = ["train", "--synthetic", "-o", str(out), "--base-channels", "4", "--depth", "2",
            "--steps", "4", "--batch-size", "2", "--patch-size", "48", "--val-size", "0",
            "--val-every", "2", "--threads", "1", "--name", "tiny"]
    assert main(args) == 0
    model = load_model(out)
    assert model.config.base_channels == 4 and model.card.name == "tiny"
    prov = read_header(out)["card"]["provenance"]
    assert prov["steps"] == 4 and "synthetic" in prov["trained_on"]
    assert prov["command"].startswith("napari-unet train --synthetic") and "--steps 4" in prov["command"]
    assert "4 steps" in capsys.readouterr().out


def test_cli_takes_an_augmentation_zoom_range(tmp_path, capsys):
    out = tmp_path / "zoomed.safetensors"
    args = ["train", "--synthetic", "-o", str(out), "--base-channels", "4", "--depth", "2",
            "--steps", "2", "--batch-size", "2", "--patch-size", "48", "--val-size", "0", "--threads", "1"]
    assert main([*args, "--scale", "0.8", "2.5"]) == 0
    assert "--scale 0.8 2.5" in read_header(out)["card"]["provenance"]["command"]
    assert main([*args, "--object-zoom"]) == 0
    command = read_header(out)["card"]["provenance"]["command"]
    assert " --object-zoom " in f"{command} " and "True" not in command  # a flag, as typed
    assert main([*args, "--scale", "2", "1"]) == 2
    assert "--scale needs 0.1 <= LOW <= HIGH <= 10, got 2 1" in capsys.readouterr().err


def test_cli_trains_from_a_folder_with_an_ignore_value(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.zeros((40, 40), np.uint16)
    labels[5:15, 5:15], labels[20:32, 18:30] = 1, 2
    labels[:, 36:] = 9  # "not annotated"
    image = (labels > 0) * 1000 + rng.integers(0, 100, labels.shape)
    tifffile.imwrite(tmp_path / "a.tif", image.astype(np.uint16))
    tifffile.imwrite(tmp_path / "a_masks.tif", labels)
    out = tmp_path / "m.safetensors"
    args = ["train", "--data", str(tmp_path), "--ignore-value", "9", "-o", str(out),
            "--base-channels", "4", "--depth", "2", "--steps", "3", "--batch-size", "2",
            "--patch-size", "32", "--threads", "1"]
    assert main(args) == 0
    assert load_model(out).card.provenance["trained_on"].endswith("(1 images)")


def test_cli_reports_a_missing_folder(tmp_path, capsys):
    code = main(["train", "--data", str(tmp_path / "nope"), "-o", str(tmp_path / "m.safetensors")])
    assert code == 2 and "no such folder" in capsys.readouterr().err


def test_cli_resumes_from_a_checkpoint(tmp_path):
    first = tmp_path / "a.safetensors"
    common = ["--synthetic", "--base-channels", "4", "--depth", "2", "--batch-size", "2",
              "--patch-size", "48", "--val-size", "0", "--val-every", "2", "--threads", "1"]
    assert main(["train", *common, "-o", str(first), "--steps", "4"]) == 0
    assert (tmp_path / "a.state.pt").exists()
    second = tmp_path / "b.safetensors"
    assert main(["train", *common, "-o", str(second), "--steps", "6", "--resume", str(tmp_path / "a.state.pt")]) == 0
    assert load_model(second).card.provenance["steps"] == 6


def test_cli_trains_on_from_a_model_file(tmp_path, capsys):
    """--init starts a new run from a model's weights (how the shipped model was trained on)."""
    import torch

    first, second = tmp_path / "first.safetensors", tmp_path / "second.safetensors"
    common = ["--synthetic", "--batch-size", "2", "--patch-size", "48", "--val-size", "0", "--threads", "1"]
    assert main(["train", "-o", str(first), "--base-channels", "4", "--depth", "2", "--steps", "2", *common]) == 0
    assert main(["train", "-o", str(second), "--init", str(first), "--steps", "1", "--lr", "1e-9", *common]) == 0
    a, b = load_model(first), load_model(second)
    assert b.config == a.config
    assert torch.allclose(a.inc[0].weight, b.inc[0].weight, atol=1e-6)  # the same weights, barely moved
    prov = b.card.provenance
    assert prov["init"] == str(first) and prov["init_provenance"]["steps"] == 2 and prov["steps"] == 1
    code = main(["train", "-o", str(second), "--init", str(first), "--resume", str(first), *common])
    assert code == 2 and "not both" in capsys.readouterr().err


@pytest.mark.parametrize("seconds", ["0", "-3"])
def test_a_time_budget_of_zero_or_less_is_one_line(tmp_path, capsys, seconds):
    out = tmp_path / "m.safetensors"
    assert main(["train", "--synthetic", "-o", str(out), "--max-seconds", seconds, "--val-size", "0"]) == 2
    err = capsys.readouterr().err
    assert "more than 0 seconds" in err and "Traceback" not in err and not out.exists()


def test_the_click_task_trains_a_click_network(tmp_path):
    from napari_unet.model.files import load_model

    out = tmp_path / "click.safetensors"
    assert main(["train", "--task", "click", "--synthetic", "-o", str(out), "--steps", "2", "--pool", "4",
                 "--base-channels", "4", "--depth", "2", "--batch-size", "2", "--patch-size", "64"]) == 0
    model = load_model(out)
    assert model.card.task == "click" and model.card.click_channels == 3
    assert "--task click" in model.card.provenance["command"]
