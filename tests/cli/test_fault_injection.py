"""A batch killed at random moments leaves only complete masks, and a rerun finishes the rest."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tifffile

from napari_unet import save_model
from napari_unet.synth.sample import nuclei_sample

N_IMAGES, KILLS, SEED = 6, 3, 2026


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIGKILL")
def test_a_killed_batch_leaves_complete_masks_and_a_rerun_reports_the_rest(tmp_path, tiny_model):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(N_IMAGES):
        tifffile.imwrite(src / f"cell{i}.tif", nuclei_sample((160, 192), seed=i).image)
    model = save_model(tiny_model, tmp_path / "tiny.safetensors")
    command = [sys.executable, "-m", "napari_unet.cli", "segment", str(src), "-o", str(out), "--model", str(model)]
    rng = np.random.default_rng(SEED)

    started = time.monotonic()
    subprocess.run(command, capture_output=True, check=True, timeout=300)  # how long a whole run takes here
    whole = time.monotonic() - started
    for path in out.glob("*"):
        path.unlink()

    for _ in range(KILLS):  # each run picks up where the last was killed (no --overwrite)
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.1, 1.0) * whole)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        for mask in out.glob("*_masks.tif"):  # what is there is whole and readable, whenever the kill came
            assert tifffile.imread(mask).shape == (160, 192), mask
        assert {p.name for p in out.iterdir() if p.name.startswith(".")} <= {
            p.name for p in out.iterdir() if p.name.endswith(".tmp")}  # at most temporary files beside them

    written = {p.name.removesuffix("_masks.tif") for p in out.glob("*_masks.tif")}
    missing = {f"cell{i}" for i in range(N_IMAGES)} - written
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    done_now = {line.split(" -> ")[0].rsplit("/", 1)[-1].removesuffix(".tif") for line in rerun.stdout.splitlines()}
    assert done_now == missing  # the rerun segments exactly the inputs that had no mask ...
    assert rerun.stderr.count("exists; pass --overwrite") == N_IMAGES - len(missing)  # ... and names the others
    assert rerun.returncode == (1 if len(missing) < N_IMAGES else 0)
    assert len(list(out.glob("*_masks.tif"))) == N_IMAGES
