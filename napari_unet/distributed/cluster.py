"""Block-wise segmentation on dask.distributed: a local cluster of processes, or any running one.

The model travels to each worker once, in a worker plugin (new workers that join, or
replace a dead one, get it too); each block is one task running
:func:`~napari_unet.distributed.block.segment_block`, retried when it raises, and
rescheduled by dask when its worker dies. Stitching runs as tasks too: each block's
face pairs, then each block's relabelling. Workers are processes, never threads of
this one: torch holds the GIL through a forward pass and a threaded worker would miss
its heartbeats.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable, Generator
from dataclasses import replace

from distributed import WorkerPlugin

from napari_unet.distributed.block import segment_block
from napari_unet.distributed.blocks import Block
from napari_unet.distributed.local import BlockReport, begin, stitch_iter
from napari_unet.distributed.plan import BlockRun, object_count, stitched
from napari_unet.distributed.stitch import face_pairs, relabel_block
from napari_unet.model.unet import UNet
from napari_unet.progress import Progress, run

RETRIES = 2  # a block that raises is tried this many more times, then reported by name


class ModelPlugin(WorkerPlugin):
    """A dask worker plugin holding the model: sent to each worker once, kept there."""

    def __init__(self, model: UNet, name: str, workers_per_host: dict[str, int] | None = None):
        self.model = model.eval()
        self.name = name  # dask keys plugins by their ``name``
        self.workers_per_host = workers_per_host or {}  # worker processes sharing each machine's cores
        self.threads = 1  # torch's threads in this worker's tasks (set in setup)

    def setup(self, worker) -> None:
        """Work out torch's share of the machine's cores (the model came with the plugin):
        workers that each use every core slow each other down many times over, and one
        that uses a single core of many wastes them.
        """
        host = worker.address.rsplit(":", 1)[0]
        sharing = self.workers_per_host.get(host, 1) * max(1, worker.state.nthreads)
        self.threads = max(1, _cores() // sharing)
        _reuse_freed_memory()


def _reuse_freed_memory() -> None:
    """Let glibc keep torch's freed buffers for the next tile, as it does outside dask.

    dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which also fixes
    glibc's mmap threshold at 128 kB: every activation of every tile is then mapped
    fresh and zeroed page by page (measured: 30 % more CPU per block). These are glibc's
    own limits once it has seen large buffers; they hold at most 64 MB unreturned.
    """
    import ctypes
    import ctypes.util

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl): nothing to undo
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 32 << 20)
    mallopt(m_trim_threshold, 64 << 20)


def _cores() -> int:
    """The cores this process may run on (its CPU affinity, where the system tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _model(name: str) -> UNet:
    """The plugin's model, with torch set to the worker's share of cores in this task's thread.

    Set here, not in the plugin's setup: dask starts workers with ``OMP_NUM_THREADS=1``
    and torch's thread count belongs to each thread, so one set on the worker's main
    thread leaves its tasks on one core (measured: 1.5x slower on 2 cores).
    """
    import torch
    from distributed import get_worker

    plugin = get_worker().plugins[name]
    if torch.get_num_threads() != plugin.threads:
        torch.set_num_threads(plugin.threads)
    return plugin.model


def _segment_task(plan: BlockRun, block: Block, plugin: str) -> int | None:
    import zarr

    image = zarr.open_array(plan.src_array, mode="r")
    labels = zarr.open_array(plan.dst_array, mode="r+")
    return segment_block(image, labels, block, plan, _model(plugin))


def _pairs_task(plan: BlockRun, block: Block):
    import zarr

    return face_pairs(zarr.open_array(plan.dst_array, mode="r"), plan.grid, block, plan.axes)


def _relabel_task(plan: BlockRun, block: Block, table) -> bool:
    import zarr

    sources, targets = table
    return relabel_block(zarr.open_array(plan.dst_array, mode="r+"), block, plan.axes, sources, targets)


def start_client(scheduler: str | None = None, *, workers: int | None = None, threads_per_worker: int = 1,
                 memory_limit: str | float | None = "auto"):
    """A dask Client: to the scheduler at ``scheduler`` (``tcp://host:port``), or to a new
    :class:`~distributed.LocalCluster` of ``workers`` processes (``None``/``"local"``),
    which closes with the client.
    """
    from distributed import Client, LocalCluster

    if scheduler not in (None, "local"):
        try:
            return Client(scheduler, timeout="20s")
        except OSError as exc:
            raise ValueError(f"no dask scheduler answers at {scheduler} ({exc}); start one (`dask scheduler`) "
                             "or use --scheduler local") from None
    workers = workers or max(1, min(4, (os.cpu_count() or 1) // max(1, threads_per_worker)))
    cluster = LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker, processes=True,
                           memory_limit=memory_limit, dashboard_address=":0")
    client = Client(cluster)
    client._napari_unet_cluster = cluster  # closed with the client (see close_client)
    return client


def close_client(client) -> None:
    """Close a client from :func:`start_client`, and its local cluster if it made one."""
    cluster = getattr(client, "_napari_unet_cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


def segment_zarr_iter(src, dst, model: UNet | None = None, *, client=None, axes: str | None = None,
                      overwrite: bool = False, retries: int = RETRIES, workers: int | None = None,
                      threads_per_worker: int = 1, memory_limit: str | float | None = "auto",
                      on_start: Callable[[str], object] | None = None,
                      **settings) -> Generator[Progress, None, BlockReport]:
    """:func:`segment_zarr` as a generator: yields :class:`Progress` (blocks done of total,
    then stitching) and returns a :class:`BlockReport`. ``on_start`` receives the dask
    dashboard's address once the cluster is up; ``workers``, ``threads_per_worker`` and
    ``memory_limit`` shape the local cluster started when ``client`` is None.
    """
    start = time.perf_counter()
    model, plan, todo, report = begin(src, dst, model, settings, axes, overwrite)
    total, resumed = report.blocks, report.resumed
    if stitched(plan) is not None and not todo:  # finished before: nothing to do
        return replace(report, objects=object_count(plan), seconds=time.perf_counter() - start)
    own = client is None or isinstance(client, str)
    if own:
        client = start_client(client, workers=workers, threads_per_worker=threads_per_worker,
                              memory_limit=memory_limit)
    try:
        dashboard = client.dashboard_link
        if on_start is not None:
            on_start(dashboard)
        report = replace(report, dashboard=dashboard)
        name = f"napari-unet-model-{uuid.uuid4().hex[:8]}"
        client.register_plugin(ModelPlugin(model, name, _workers_per_host(client)), name=name)
        try:
            result = yield from _run_blocks(client, plan, todo, name, retries, resumed, total)
        finally:
            _unregister(client, name)
        segmented, empty, failed = result
        report = replace(report, segmented=segmented, empty=empty, failed=tuple(failed))
        if failed:
            return replace(report, seconds=time.perf_counter() - start)
        yield from stitch_iter(plan, lambda blocks: _pairs(client, plan, blocks),
                               lambda blocks, s, t: _relabel(client, plan, blocks, s, t))
        return replace(report, objects=object_count(plan), seconds=time.perf_counter() - start)
    finally:
        if own:
            close_client(client)


def _run_blocks(client, plan, todo, plugin, retries, resumed, total):
    """Submit every block; yield progress as they finish; return (segmented, empty, failed)."""
    from distributed import as_completed

    token = uuid.uuid4().hex[:8]
    futures = {client.submit(_segment_task, plan, block, plugin, key=f"{block.name}-{token}", retries=retries,
                             pure=False): block for block in todo}
    segmented, empty, failed = 0, 0, []
    yield Progress(resumed, total, "blocks")
    for future in as_completed(futures):
        block = futures[future]
        if future.status == "finished":
            found = future.result()
            segmented += 1
            empty += found is None
        else:
            exc = future.exception()
            failed.append(f"{block.name}: {type(exc).__name__}: {exc}")
        future.release()
        yield Progress(resumed + segmented + len(failed), total, "blocks")
    return segmented, empty, sorted(failed)


def _pairs(client, plan, blocks):
    from distributed import as_completed

    futures = client.map(_pairs_task, [plan] * len(blocks), blocks, pure=False)
    for future in as_completed(futures):
        yield future.result()


def _relabel(client, plan, blocks, sources, targets):
    from distributed import as_completed

    if not len(sources):  # nothing crosses a face: no block changes
        yield from (False for _ in blocks)
        return
    table = client.scatter((sources, targets), broadcast=True)
    futures = client.map(_relabel_task, [plan] * len(blocks), blocks, [table] * len(blocks), pure=False)
    for future in as_completed(futures):
        yield future.result()


def _workers_per_host(client) -> dict[str, int]:
    """How many worker processes each machine of the cluster runs."""
    hosts: dict[str, int] = {}
    for address in client.scheduler_info().get("workers", {}):
        host = address.rsplit(":", 1)[0]
        hosts[host] = hosts.get(host, 0) + 1
    return hosts


def _unregister(client, name: str) -> None:
    try:
        client.unregister_worker_plugin(name)
    except Exception:  # the cluster may be gone already; the plugin goes with it
        pass


def segment_zarr(src, dst, model: UNet | None = None, *, client=None, block_size: int | tuple[int, ...] | None = None,
                 progress: bool = True, **kwargs) -> BlockReport:
    """Segment a zarr or OME-Zarr image block by block on dask.distributed.

    Parameters
    ----------
    src
        A zarr array or OME-Zarr image (level 0 is segmented; axes and spacing from its metadata).
    dst
        Where the labels go: a new OME-Zarr image (``out.zarr``), the image's own labels
        group (``image.zarr/labels/nuclei``), or with ``ome=False`` a plain zarr array.
        An interrupted run into ``dst`` resumes: blocks already written are skipped.
    model
        A :class:`UNet` (None: the shipped nuclei model); sent to each worker once.
    client
        A ``distributed.Client``, a scheduler address (``"tcp://host:8786"``), or None for
        a local cluster of worker processes (closed at the end).
    block_size
        The block core's edge in pixels (None: 2048 in 2D, 192 in 3D).
    progress
        Print a progress bar (blocks done of total, time left) and the dashboard's address on stderr.
    **kwargs
        ``axes``, ``overwrite``, ``retries``; ``workers``, ``threads_per_worker``, ``memory_limit``
        for the local cluster; :class:`~napari_unet.distributed.plan.BlockSettings` fields
        (``halo``, ``zoom``, ``params``, ``tile_size``, ...).

    Returns
    -------
    BlockReport
        What was done; ``failed`` names the blocks that failed after their retries (rerun
        to try them again).
    """
    job = segment_zarr_iter(src, dst, model, client=client, block_size=block_size,
                            on_start=(lambda link: print(f"dask dashboard: {link}", file=sys.stderr))
                            if progress else None, **kwargs)
    if not progress:
        return run(job)
    from tqdm import tqdm

    with tqdm(unit="block", file=sys.stderr) as bar:
        return run(job, progress_bar(bar))


def progress_bar(bar):
    """A callback showing :class:`Progress` on a tqdm ``bar``: one line per stage, with time left."""
    stage = [None]

    def show(step: Progress) -> None:
        if stage[0] != step.stage:
            stage[0] = step.stage
            bar.set_description(step.stage)
            bar.reset(total=step.total)
            bar.initial = bar.n = step.done  # blocks done by an earlier run: shown, not counted in the rate
            bar.refresh()
            return
        bar.update(step.done - bar.n)

    return show
