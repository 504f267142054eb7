"""Block geometry: the grid of blocks over an image, each block's core and halo, its neighbours.

A block's *core* is the part of the image whose labels it writes; it reads its core plus a
*halo* on every side, so the network and the instance post-processing see every object
of the core whole, with all the context they would have in one pass over the image.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from napari_unet.model.unet import UNet


@dataclass(frozen=True)
class Block:
    """One block of the grid; slices are along the image's non-channel axes, in their order."""

    index: tuple[int, ...]  # position in the grid, one entry per non-channel axis
    number: int  # its place in the grid, row-major: makes its label ids unique (see id_stride)
    core: tuple[slice, ...]  # the pixels whose labels the block writes
    read: tuple[slice, ...]  # the core and its halo, clipped to the image

    @property
    def name(self) -> str:
        """``block_0_3``: how progress, markers and errors name the block."""
        return "block_" + "_".join(str(i) for i in self.index)

    @property
    def core_in_read(self) -> tuple[slice, ...]:
        """The core's slices inside the array read (``read``)."""
        return tuple(slice(c.start - r.start, c.stop - r.start) for c, r in zip(self.core, self.read))


@dataclass(frozen=True)
class BlockGrid:
    """Blocks of ``edges`` pixels (per axis) over ``shape``, reading ``halo`` more on each side."""

    shape: tuple[int, ...]  # the image's shape without its channel axis
    edges: tuple[int, ...]  # the block core's edge along each axis
    halo: tuple[int, ...]  # pixels read beyond the core on each side, per axis
    align: tuple[int, ...] | None = None  # reads start and end on multiples of these (None: anywhere)

    @property
    def counts(self) -> tuple[int, ...]:
        """Blocks along each axis."""
        return tuple(math.ceil(n / e) for n, e in zip(self.shape, self.edges))

    def __len__(self) -> int:
        return math.prod(self.counts)

    def blocks(self) -> list[Block]:
        """Every block, row-major."""
        return [self.block(index) for index in itertools.product(*(range(c) for c in self.counts))]

    def block(self, index: tuple[int, ...]) -> Block:
        """The block at grid position ``index``."""
        core = tuple(slice(i * e, min((i + 1) * e, n)) for i, e, n in zip(index, self.edges, self.shape))
        align = self.align or (1,) * len(self.shape)
        read = tuple(slice(max(0, (c.start - h) // a * a), min(n, -(-(c.stop + h) // a) * a))
                     for c, h, n, a in zip(core, self.halo, self.shape, align))
        number = 0
        for i, c in zip(index, self.counts):
            number = number * c + i
        return Block(tuple(index), number, core, read)

    def upper_neighbour(self, block: Block, axis: int) -> Block | None:
        """The block after ``block`` along ``axis`` (None at the image's end)."""
        if block.index[axis] + 1 >= self.counts[axis]:
            return None
        index = list(block.index)
        index[axis] += 1
        return self.block(tuple(index))


def receptive_field(model: UNet) -> int:
    """The U-Net's receptive field in pixels (along Y and X): what one output pixel sees.

    Two 3x3 convolutions per level on the way down and up, pooling by 2: e.g. 200 px for
    depth 4. A block's halo must give every core pixel half of it on each side.
    """
    depth = model.config.depth
    field, step = 1 + 4, 1  # the first two convolutions
    for _ in range(depth):  # pool, then two convolutions at the coarser step
        field += step
        step *= 2
        field += 4 * step
    while step > 1:  # upsample, then two convolutions at the finer step
        step //= 2
        field += 4 * step
    return field


def chunk_edges(edges: tuple[int, ...], max_voxels: int = 2**21) -> tuple[int, ...]:
    """Label chunks that tile a block core exactly (so no two blocks write one chunk), each
    edge the largest divisor of the block's edge under an even share of ``max_voxels``
    (8 MB of int32: napari reads them quickly, zarr writes them whole).
    """
    cap = max(1, int(round(max_voxels ** (1 / max(1, sum(e > 1 for e in edges))))))
    return tuple(e if e <= cap else max(d for d in range(1, cap + 1) if e % d == 0) for e in edges)


def id_stride(edges: tuple[int, ...], min_size: int) -> int:
    """Label ids each block may use: a power of two over the most objects of at least
    ``min_size`` pixels its core can hold. Block ``n`` numbers its objects from
    ``n * stride + 1``, so ids are unique across blocks before any stitching.
    """
    most = math.prod(edges) // max(1, min_size) + 1
    return 1 << most.bit_length()
