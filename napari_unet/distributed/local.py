"""Block-wise segmentation in this process: the plain loop, and what both drivers share.

:func:`segment_blocks_iter` runs the block function block after block, then stitches,
yielding :class:`~napari_unet.progress.Progress`; it suits napari and images that fit
on one machine's disk but not in its memory. :func:`prepare` (open the image, plan the
run or resume it, create the labels) and :func:`stitch_iter` are shared with the
dask.distributed driver (:mod:`napari_unet.distributed.cluster`).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Generator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from napari_unet import checks
from napari_unet.distributed.block import segment_block
from napari_unet.distributed.blocks import Block
from napari_unet.distributed.plan import (
    BlockRun,
    BlockSettings,
    done_blocks,
    labels_chunks,
    load_plan,
    mark_stitched,
    object_count,
    plan_run,
    save_plan,
    stitched,
)
from napari_unet.distributed.stitch import face_pairs, merge_table, relabel_block
from napari_unet.io.zarr import create_labels, open_labels, open_zarr
from napari_unet.model.files import load_model
from napari_unet.model.unet import UNet
from napari_unet.progress import Progress


@dataclass(frozen=True)
class BlockReport:
    """What a block-wise run did."""

    labels: Path  # the labels written (OME-Zarr group or zarr array)
    blocks: int  # blocks in the grid
    segmented: int  # blocks segmented by this run
    resumed: int  # blocks found done by an earlier run and skipped
    empty: int  # blocks skipped as flat (no objects) by this run
    objects: int  # objects in the labels after stitching (0 while blocks failed)
    failed: tuple[str, ...] = ()  # "block_0_3: what went wrong", for blocks that failed after retries
    seconds: float = 0.0  # wall time of this run
    dashboard: str | None = None  # the dask dashboard's address (dask runs)

    @property
    def complete(self) -> bool:
        """Whether every block was segmented and the labels are stitched."""
        return not self.failed


def prepare(src, dst, model: UNet, settings: BlockSettings, *, axes: str | None = None,
            overwrite: bool = False) -> tuple[BlockRun, list[Block]]:
    """Open the image, plan the run (or pick up an interrupted one into ``dst``), create
    the labels; return the plan and the blocks still to segment.

    Raises
    ------
    ValueError
        If ``dst`` holds something else (pass ``overwrite``), or is the image itself.
    """
    image = open_zarr(src, axes)
    dst = Path(dst)
    inside = image.path.resolve() in [dst.resolve(), *dst.resolve().parents]
    if inside and dst.resolve().parent != image.path.resolve() / "labels":
        raise ValueError(f"{dst}: labels cannot be written over the image; give a new path "
                         f"(e.g. {image.path.with_name(image.path.stem + '_labels.zarr')}, or "
                         f"{image.path / 'labels' / 'nuclei'} to add them to the OME-Zarr image)")
    dst_array = dst / "0" if settings.ome else dst
    previous = None if overwrite else load_plan(dst)
    if os.path.lexists(dst) and not overwrite and previous is None:
        raise ValueError(f"{dst} exists; pass overwrite=True (--overwrite) to replace it")
    plan = plan_run(image, dst, dst_array, model, settings, previous)
    if previous is not None and not previous.same_job(plan):
        raise ValueError(f"{dst} holds labels of another run (another image, model or block size); "
                         "pass overwrite=True (--overwrite) to replace them")
    if previous is None:
        if overwrite and os.path.lexists(dst):
            shutil.rmtree(dst) if dst.is_dir() else dst.unlink()
        dtype = "int32" if len(plan.grid) * plan.stride < 2**31 else "int64"
        create_labels(dst, image, labels_chunks(plan), ome=settings.ome, dtype=dtype)
        save_plan(plan)
    done = done_blocks(plan)
    return plan, [b for b in plan.grid.blocks() if b.name not in done]


def stitch_iter(plan: BlockRun, pairs_of, relabel) -> Generator[Progress, None, int]:
    """Join the objects that cross block faces; returns how many ids were merged away.

    ``pairs_of(blocks)`` yields each block's face pairs, ``relabel(blocks, sources,
    targets)`` yields once per block relabelled: in-process loops or dask tasks.
    """
    blocks = plan.grid.blocks()
    found = []
    for i, pairs in enumerate(pairs_of(blocks)):
        found.append(pairs)
        yield Progress(i + 1, len(blocks), "faces")
    sources, targets = merge_table(np.concatenate(found) if found else np.zeros((0, 2)))
    for i, _ in enumerate(relabel(blocks, sources, targets)):
        yield Progress(i + 1, len(blocks), "stitching")
    mark_stitched(plan, len(sources))
    return len(sources)


def begin(src, dst, model: UNet | None, settings: dict, axes: str | None, overwrite: bool):
    """What both drivers start from: the model (the shipped one for None), the run's plan,
    the blocks left to do (a rerun skips those written), and the report so far.
    """
    model = load_model() if checks.model_or_none(model) is None else model  # Model Zoo models: refused in words
    plan, todo = prepare(src, dst, model, BlockSettings(**settings), axes=axes, overwrite=overwrite)
    return model, plan, todo, BlockReport(Path(dst), len(plan.grid), 0, len(plan.grid) - len(todo), 0, 0)


def segment_blocks_iter(src, dst, model: UNet | None = None, *, axes: str | None = None, overwrite: bool = False,
                        **settings) -> Generator[Progress, None, BlockReport]:
    """Segment the zarr/OME-Zarr image ``src`` block by block into labels at ``dst``, in
    this process; yields :class:`Progress` (stage ``"blocks"``, then ``"faces"`` and
    ``"stitching"``) and returns a :class:`BlockReport`.

    Keyword arguments are :class:`~napari_unet.distributed.plan.BlockSettings` fields.
    An interrupted run resumes: blocks already written are skipped.
    """
    start = time.perf_counter()
    model, plan, todo, report = begin(src, dst, model, settings, axes, overwrite)
    total, resumed = report.blocks, report.resumed
    if stitched(plan) is not None and not todo:  # finished before: nothing to do
        return replace(report, objects=object_count(plan), seconds=time.perf_counter() - start)
    image = open_zarr(src, axes).array
    labels = open_labels(dst)
    yield Progress(resumed, total, "blocks")
    empty = 0
    for i, block in enumerate(todo):
        empty += segment_block(image, labels, block, plan, model) is None
        yield Progress(resumed + i + 1, total, "blocks")

    def pairs_of(blocks):
        return (face_pairs(labels, plan.grid, b, plan.axes) for b in blocks)

    def relabel(blocks, sources, targets):
        return (relabel_block(labels, b, plan.axes, sources, targets) for b in blocks)

    yield from stitch_iter(plan, pairs_of, relabel)
    return replace(report, segmented=len(todo), empty=empty, objects=object_count(plan),
                   seconds=time.perf_counter() - start)
