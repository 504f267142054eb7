"""The one block function: read a block and its halo, segment it, write its core.

It runs the same in-process (napari, small images) and as a dask task on a worker:
arrays in, labels written, a count returned. Nothing here knows about other blocks but
their id range: block ``n`` numbers its objects from ``n * stride + 1``, and stitching
(:mod:`napari_unet.distributed.stitch`) joins the objects that cross block faces.
"""

from __future__ import annotations

import math

import numpy as np

from napari_unet.distributed.blocks import Block
from napari_unet.distributed.plan import BlockRun, mark_done, scaled
from napari_unet.inference.images import to_canonical
from napari_unet.inference.predict import predict_iter
from napari_unet.inference.segment import labels_from
from napari_unet.inference.tiling import tile_starts
from napari_unet.inference.zoom import zoomed_shape
from napari_unet.model.unet import UNet
from napari_unet.progress import run

LOW_RES = 8  # the flat-block test looks at the block averaged over LOW_RES x LOW_RES pixels


def segment_block(image, labels, block: Block, plan: BlockRun, model: UNet) -> int | None:
    """Segment ``block`` of the zarr array ``image`` into the zarr array ``labels``.

    Reads the block's core and halo, scales it to the run's intensities, skips it when
    its low-resolution image is flat (no objects: nothing is written, the labels stay 0),
    predicts with :func:`~napari_unet.inference.predict.predict_iter` (tiles blended
    inside the block), finds instances in 2D or, with a Z axis, in 3D, and writes the
    core's objects with ids ``block.number * plan.stride + 1 ...``. Then the block's
    done-marker is written. Returns the number of objects written (None: skipped as flat).
    """
    read = np.asarray(image[_index(plan.axes, block.read)])
    pixels = scaled(read, plan.axes, plan.low, plan.high)
    if plan.flat_contrast > 0 and _flat(pixels, plan.axes, plan.flat_contrast):
        mark_done(plan, block.name, 0, empty=True)
        return None
    canonical, order = to_canonical(pixels, plan.axes)
    if "T" in order:  # blocks hold one time point
        canonical, order = canonical[0], order[1:]
    spatial = "".join(a for a in order if a != "C")
    channel_axis = -1 if "C" in order else None
    shape = canonical.shape[:-1] if channel_axis is not None else canonical.shape
    tile = plan.tile_size
    if getattr(model.config, "spatial_dims", 2) == 2 and np.ndim(tile) == 0:
        tile = fitted_tiles(zoomed_shape(shape[-2:], plan.zoom), plan.tile_size, plan.overlap, plan.multiple)
    probs = run(predict_iter(canonical, model, channel_axis=channel_axis, device=plan.device, normalized=True,
                             zoom=plan.zoom, keep_zoom=True, tile_size=tile, overlap=plan.overlap))
    found = labels_from(probs, plan.instance_params, plan.task, shape, spatial, plan.spacing)
    core = tuple(block.core_in_read[[a for a in plan.axes if a != "C"].index(a)] for a in spatial)
    ids, n = _numbered(found[core], block.number, plan.stride)
    labels[_index(plan.axes, block.core)] = _to_axes(ids.astype(labels.dtype), spatial, plan.axes)
    mark_done(plan, block.name, n, empty=False)
    return n


def fitted_tiles(seen: tuple[int, ...], tile: int, overlap: float, multiple: int) -> tuple[int, ...]:
    """Per axis of ``seen`` (the block at the network's zoom), the smallest tile edge, a
    multiple of ``multiple`` and at most ``tile``, that covers it with no more tiles than
    ``tile`` itself would, overlapping by at least ``overlap``.

    A block is rarely a whole number of tiles: with tiles of one edge the last one lies
    almost entirely over its neighbour (a 800-px block takes two 512-px tiles, 224 px
    predicted twice). Tiles fitted to the block make as many forward passes, each smaller:
    the block's tiles hold no more pixels than the whole image's tiles over the same area.
    """
    edges = []
    for n in seen:
        count = len(tile_starts(n, tile, overlap))
        if count == 1:
            edges.append(tile)
            continue
        edge = -(-math.ceil(n / (count - (count - 1) * overlap)) // multiple) * multiple
        while edge < tile and len(tile_starts(n, edge, overlap)) > count:
            edge += multiple
        edges.append(min(edge, tile))
    return tuple(edges)


def _index(axes: str, slices: tuple[slice, ...]) -> tuple:
    """A zarr index over every axis of ``axes`` from slices over its non-channel axes."""
    it = iter(slices)
    return tuple(slice(None) if a == "C" else next(it) for a in axes)


def _flat(pixels: np.ndarray, axes: str, contrast: float) -> bool:
    """Whether the block, averaged over LOW_RES² pixels, varies less than ``contrast``."""
    y, x = axes.index("Y"), axes.index("X")
    sy, sx = pixels.shape[y] // LOW_RES, pixels.shape[x] // LOW_RES
    if sy == 0 or sx == 0:
        return False
    cut = [slice(None)] * pixels.ndim
    cut[y], cut[x] = slice(0, sy * LOW_RES), slice(0, sx * LOW_RES)
    small = pixels[tuple(cut)]
    shape = list(small.shape)
    shape[x:x + 1] = [sx, LOW_RES]
    shape[y:y + 1] = [sy, LOW_RES]
    pooled = small.reshape(shape).mean(axis=(y + 1, x + 2))
    return float(pooled.max() - pooled.min()) < contrast


def _numbered(core: np.ndarray, number: int, stride: int) -> tuple[np.ndarray, int]:
    """The core's objects renumbered ``number * stride + 1 ...`` (int64), and their count."""
    ids = np.unique(core)
    ids = ids[ids > 0]
    if len(ids) >= stride:
        raise ValueError(f"{len(ids)} objects in one block, more than its {stride - 1} ids; use a smaller block_size")
    lut = np.zeros(int(core.max(initial=0)) + 1, np.int64)
    lut[ids] = np.arange(1, len(ids) + 1) + number * stride
    return lut[core], len(ids)


def _to_axes(labels: np.ndarray, spatial: str, axes: str) -> np.ndarray:
    """Labels over ``spatial`` axes laid out as ``axes`` (T and C of length 1)."""
    present = spatial
    for a in axes:
        if a not in present:
            labels = labels[None]
            present = a + present
    return np.transpose(labels, [present.index(a) for a in axes])
