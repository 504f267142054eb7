"""Sliding-window geometry: where tiles go and how their overlaps are blended."""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np


def tile_starts(size: int, tile: int, overlap: float) -> list[int]:
    """Start offsets covering ``size`` pixels with tiles of ``tile`` overlapping by ``overlap``.

    The last tile is aligned with the end, so no tile hangs over the border.
    """
    if tile >= size:
        return [0]
    stride = max(1, int(round(tile * (1.0 - overlap))))
    starts = list(range(0, size - tile, stride))
    return [*starts, size - tile]


def tile_slices(shape: tuple[int, ...], tile: int | tuple[int, ...], overlap: float) -> list[tuple[slice, ...]]:
    """Slices of every tile of a plane (Y, X) or a volume (Z, Y, X), in C order.

    ``tile`` is one edge for every axis or one per axis; tiles never exceed the image.
    """
    edges = (tile,) * len(shape) if isinstance(tile, int) else tuple(tile)
    starts = [tile_starts(n, t, overlap) for n, t in zip(shape, edges)]
    sizes = [min(t, n) for n, t in zip(shape, edges)]
    return [tuple(slice(a, a + n) for a, n in zip(corner, sizes)) for corner in itertools.product(*starts)]


@lru_cache(maxsize=8)
def blend_window(*shape: int) -> np.ndarray:
    """Smooth (Hann-like, never zero) weights so overlapping tiles fade into each other,
    for a tile of any number of axes.

    Centre pixels, which saw the most context, count most; the floor of 1e-3 keeps
    image borders (covered by one tile only) well defined.
    """
    def ramp(n: int) -> np.ndarray:
        return np.maximum(np.sin(np.pi * (np.arange(n) + 0.5) / n), 1e-3).astype(np.float32)

    window = np.ones((), np.float32)
    for n in shape:
        window = np.multiply.outer(window, ramp(n))
    window.setflags(write=False)
    return window
