"""Training on several processes (torchrun, DistributedDataParallel): two CPU ranks with gloo."""

import os
import subprocess
import sys

import pytest
import torch

from napari_unet.model.files import load_model
from napari_unet.training import parallel


@pytest.mark.slow
def test_two_processes_train_one_model_and_write_one_file(tmp_path):
    out = tmp_path / "ddp.safetensors"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "napari_unet.cli", "train", "--synthetic", "-o", str(out), "--base-channels", "4",
               "--depth", "2", "--steps", "4", "--batch-size", "2", "--patch-size", "48", "--val-size", "1",
               "--val-every", "2", "--device", "cpu"]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    # rank 0 alone wrote the model (and its resume state beside it) and printed the summary
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp.safetensors", "ddp.state.pt"]
    assert done.stdout.count("4 steps in") == 1
    # every rank's weights and BatchNorm statistics hashed the same at the end
    assert "2 processes (gloo): replicas identical: yes" in done.stdout
    model = load_model(out)
    prov = model.card.provenance
    assert prov["steps"] == 4 and prov["processes"] == 2 and prov["replicas_identical"] is True
    assert "2 processes (gloo)" in prov["hardware"]


def test_alone_a_process_is_rank_0_of_1_and_nothing_changes(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    model = torch.nn.Linear(2, 1)
    with parallel.session("cpu") as ranks:
        assert ranks == parallel.Group() and ranks.main
        assert ranks.seed(7) == 7  # a single process draws what it always drew
        assert ranks.wrap(model) is model and ranks.identical(model) is None
        assert ranks.from_main((0.5, 1.0)) == (0.5, 1.0) and ranks.mean(2.0) == 2.0
        assert ranks.device(torch.device("cpu")) == torch.device("cpu")


def test_each_rank_draws_its_own_patches_and_a_resume_new_ones():
    seeds = {parallel.Group(rank, 4).seed(0, step) for rank in range(4) for step in (0, 100)}
    assert len(seeds) == 8 and parallel.Group(0, 4).seed(0) == 0


def test_each_rank_trains_on_its_own_gpu():
    ranks = parallel.Group(rank=3, size=4, local_rank=1, backend="nccl")
    assert ranks.device(torch.device("cuda")) == torch.device("cuda", 1)
    assert ranks.device(torch.device("cpu")) == torch.device("cpu") and not ranks.main
