"""Block-wise segmentation on real dask clusters: a LocalCluster of two worker processes
(shared by the tests of this module), and `dask scheduler` + `dask worker` started by hand
with the CLI connecting by address. A killed worker and a block that cannot be written."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _block_images import BLOCK, disks_2d, write_zarr

from napari_unet.cli.main import main
from napari_unet.distributed import segment_blocks_iter, segment_zarr, segment_zarr_iter
from napari_unet.inference.segment import segment
from napari_unet.io.zarr import open_labels
from napari_unet.model.files import save_model
from napari_unet.progress import run
from napari_unet.training.metrics import average_precision

pytestmark = pytest.mark.slow  # worker processes take seconds to start


@pytest.fixture(scope="module")
def client():
    """Two worker processes on this machine, as ``--scheduler local`` starts them."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        with Client(cluster) as c:
            yield c


@pytest.fixture(scope="module")
def image_zarr(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cluster")
    image = disks_2d()
    return image, write_zarr(folder / "image.zarr", image)


def labels_of(path) -> np.ndarray:
    return np.asarray(open_labels(path, mode="r")[...])


@pytest.fixture(scope="module")
def reference(image_zarr, tmp_path_factory):
    """The labels of an uninterrupted in-process block-wise run."""
    from _block_images import threshold_instance_unet

    dst = tmp_path_factory.mktemp("reference") / "labels.zarr"
    run(segment_blocks_iter(image_zarr[1], dst, threshold_instance_unet(), block_size=BLOCK))
    return labels_of(dst)


def test_two_workers_match_one_pass(client, image_zarr, reference, tmp_path, threshold_model):
    image, src = image_zarr
    report = segment_zarr(src, tmp_path / "labels.zarr", threshold_model, client=client, block_size=BLOCK,
                          progress=False)
    labels = labels_of(tmp_path / "labels.zarr")
    assert report.complete and report.segmented == 16 and report.dashboard.startswith("http")
    assert average_precision(segment(image, threshold_model), labels, [0.5])[0] >= 0.98
    assert np.array_equal(labels, reference)  # the same blocks as in this process, to the pixel
    ids = np.unique(labels[100:109, 44:84])
    assert len(ids[ids > 0]) == 1  # the bar across a block border is one object


def test_a_failed_block_is_named_and_a_rerun_resumes(client, image_zarr, reference, tmp_path, threshold_model):
    _, src = image_zarr
    dst = tmp_path / "labels.zarr"
    job = segment_blocks_iter(src, dst, threshold_model, block_size=BLOCK)
    for step in job:  # an earlier run stopped after 4 blocks (the first row)
        if step.stage == "blocks" and step.done == 4:
            job.close()
            break
    blocked = dst / "0" / "3" / "1"  # block_3_1's chunk: a folder where its file must go, so writing fails
    blocked.mkdir(parents=True)
    report = segment_zarr(src, dst, threshold_model, client=client, block_size=BLOCK, progress=False, retries=1)
    assert report.resumed == 4 and not report.complete
    assert [line.split(":")[0] for line in report.failed] == ["block_3_1"]
    blocked.rmdir()
    again = segment_zarr(src, dst, threshold_model, client=client, block_size=BLOCK, progress=False)
    assert again.complete and again.resumed == 15 and again.segmented == 1
    assert np.array_equal(labels_of(dst), reference)


def test_a_killed_worker_does_not_lose_the_run(client, image_zarr, reference, tmp_path, threshold_model):
    _, src = image_zarr
    dst = tmp_path / "labels.zarr"
    pids = list(client.run(os.getpid).values())
    job = segment_zarr_iter(src, dst, threshold_model, client=client, block_size=BLOCK)
    killed = False
    while True:
        try:
            step = next(job)
        except StopIteration as stop:
            report = stop.value
            break
        if not killed and step.stage == "blocks" and step.done >= 2:
            os.kill(pids[0], signal.SIGKILL)  # mid-run: its block goes to the other worker
            killed = True
    assert killed and report.complete and report.segmented == 16
    assert np.array_equal(labels_of(dst), reference)


def test_a_lone_worker_runs_torch_on_every_core(image_zarr, tmp_path, threshold_model):
    """dask starts its workers with OMP_NUM_THREADS=1; the blocks still use the worker's share of cores."""
    import torch
    from distributed import Client, LocalCluster

    cores = len(os.sched_getaffinity(0))
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        with Client(cluster) as c:
            report = segment_zarr(image_zarr[1], tmp_path / "labels.zarr", threshold_model, client=c,
                                  block_size=BLOCK, progress=False)
            assert report.complete
            assert c.submit(torch.get_num_threads, pure=False).result() == cores  # the thread the blocks ran on


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_cli_uses_a_running_scheduler(tmp_path, threshold_model, capsys):
    from distributed import Client

    image = disks_2d((128, 128))
    src = write_zarr(tmp_path / "image.zarr", image)
    model = save_model(threshold_model, tmp_path / "threshold.safetensors")
    address = f"tcp://127.0.0.1:{free_port()}"
    dask = str(Path(sys.executable).parent / "dask")
    started = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                                 "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        time.sleep(1)
        one_thread = {**os.environ, "OMP_NUM_THREADS": "1"}  # torch on one core: the tests share the machine
        started.append(subprocess.Popen([dask, "worker", address, "--nworkers", "1", "--nthreads", "1",
                                         "--no-dashboard"], env=one_thread, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL))
        with Client(address, timeout="60s") as c:
            c.wait_for_workers(1, timeout=120)
        out = tmp_path / "labels.zarr"
        code = main(["segment", src, "-o", str(out), "--model", str(model), "--scheduler", address,
                     "--block-size", str(BLOCK)])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        assert "dask dashboard" in captured.err and f"-> {out}" in captured.out
        assert average_precision(segment(image, threshold_model), labels_of(out), [0.5])[0] >= 0.98
    finally:
        for p in reversed(started):
            p.terminate()
            p.wait(timeout=30)
