"""`napari-unet info` (and loading a model from the CLI): a bad file is one line and a failing exit code."""

import json
import subprocess
import sys

import pytest

from napari_unet import save_model
from napari_unet.cli.main import main


@pytest.fixture
def model_file(tmp_path, tiny_model):
    return save_model(tiny_model, tmp_path / "tiny.safetensors")


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    return err


def test_info_prints_the_header(model_file, capsys):
    assert main(["info", str(model_file)]) == 0
    header = json.loads(capsys.readouterr().out)
    assert header["config"]["base_channels"] == 4 and header["card"]["task"] == "instances"


def test_info_on_a_truncated_file_fails(model_file, capsys):
    model_file.write_bytes(model_file.read_bytes()[:-16])
    assert main(["info", str(model_file)]) == 2
    err = _one_error_line(capsys)
    assert str(model_file) in err and "truncated" in err


def test_info_on_a_tampered_card_fails(model_file, capsys):
    data = model_file.read_bytes()
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + length])
    card = json.loads(header["__metadata__"]["card"])
    del card["classes"][0]
    header["__metadata__"]["card"] = json.dumps(card)
    raw = json.dumps(header).encode()
    model_file.write_bytes(len(raw).to_bytes(8, "little") + raw + data[8 + length :])
    assert main(["info", str(model_file)]) == 2
    err = _one_error_line(capsys)
    assert str(model_file) in err and "field 'card.classes' has 2 names" in err
    assert main(["segment", str(model_file), "-o", str(model_file.parent / "out"), "--model", str(model_file)]) == 2
    assert "field 'card.classes'" in _one_error_line(capsys)


def test_info_on_a_missing_file_fails(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nope.safetensors")]) == 2
    assert "no such model file" in _one_error_line(capsys)


def test_help_answers_without_loading_torch_or_dask():
    """`napari-unet --help` and a subcommand's help answer at once: the networks load with the run."""
    code = (
        "import sys\n"
        "from napari_unet.cli.main import main\n"
        "for argv in (['--help'], ['segment', '--help'], ['train', '--help'], ['finetune', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('LOADED', sorted(m for m in ('torch', 'dask', 'distributed', 'napari') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "usage: napari-unet segment" in done.stdout and "--click-output" in done.stdout
    assert done.stdout.splitlines()[-1] == "LOADED []"
