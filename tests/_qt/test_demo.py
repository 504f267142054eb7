"""`napari-unet demo --screenshot`: the headless main job, end to end (with a tiny model); `--medical`."""

from __future__ import annotations

import pytest

from napari_unet.cli.main import main


@pytest.mark.slow
def test_demo_screenshot(qapp, model_file, tmp_path, capsys):
    out = tmp_path / "demo.png"
    assert main(["demo", "--screenshot", str(out), "--model", str(model_file)]) == 0
    assert out.stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "objects in the new layer 'nuclei (synthetic) masks'" in printed


def test_demo_without_a_model_fails_cleanly(qapp, tmp_path, capsys):
    missing = tmp_path / "missing.safetensors"
    assert main(["demo", "--screenshot", str(tmp_path / "x.png"), "--model", str(missing)]) == 1
    assert "could not load" in capsys.readouterr().err


@pytest.mark.slow
def test_medical_demo_trains_and_shows_the_class_map(qapp, tmp_path, capsys):
    out = tmp_path / "medical.png"
    assert main(["demo", "--medical", "--seconds", "3", "--screenshot", str(out)]) == 0
    assert out.stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "Held-out slice 20" in printed and "Dice body" in printed
    assert "Segment now uses it" in printed and "'abdomen MR (synthetic) classes (new model)'" in printed


def test_medical_demo_takes_no_model_file(tmp_path, capsys):
    assert main(["demo", "--medical", "--model", str(tmp_path / "x.safetensors")]) == 2
    assert "--medical trains its own model" in capsys.readouterr().err
