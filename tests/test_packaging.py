"""A built wheel is a napari plugin: the shipped models inside, the manifest found by npe2."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    cmd = [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return next(out.glob("napari_unet-*.whl"))


@pytest.mark.slow
def test_the_wheel_carries_the_models_and_the_manifest(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "napari_unet/model/weights/nuclei.safetensors" in names
    assert "napari_unet/model/weights/nuclei_click.safetensors" in names
    assert "napari_unet/napari.yaml" in names
    entry = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "[napari.manifest]" in entry and "napari_unet:napari.yaml" in entry


@pytest.mark.slow
def test_installed_from_the_wheel_napari_finds_the_plugin_and_its_model(wheel, tmp_path):
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    # the dependencies come from this test's environment (no downloads); napari-unet only from the wheel
    purelib = Path(subprocess.check_output([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                           text=True).strip())
    (purelib / "deps.pth").write_text("\n".join(p for p in site.getsitepackages() if "site-packages" in p) + "\n")
    done = subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "-q", str(wheel)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    code = (
        "import napari_unet, npe2\n"
        "assert 'site-packages' in napari_unet.__file__ and 'env' in napari_unet.__file__, napari_unet.__file__\n"
        "pm = npe2.PluginManager.instance(); pm.discover()\n"
        "widgets = [w.display_name for w in pm.get_manifest('napari-unet').contributions.widgets]\n"
        "print(sorted(widgets))\n"
        "print(napari_unet.load_model().config.base_channels)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    ran = subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "'Segment'" in ran.stdout and "'Fine-tune'" in ran.stdout
