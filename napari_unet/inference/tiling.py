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


def tile_slices(shape: tuple[int, int], tile: int, overlap: float) -> list[tuple[slice, slice]]:
    """(y, x) slices of every tile of a 2D plane, row by row."""
    ys = tile_starts(shape[0], tile, overlap)
    xs = tile_starts(shape[1], tile, overlap)
    th, tw = min(tile, shape[0]), min(tile, shape[1])
    return [(slice(y, y + th), slice(x, x + tw)) for y, x in itertools.product(ys, xs)]


@lru_cache(maxsize=8)
def blend_window(height: int, width: int) -> np.ndarray:
    """Smooth (Hann-like, never zero) weights so overlapping tiles fade into each other.

    Centre pixels, which saw the most context, count most; the floor of 1e-3 keeps
    image borders (covered by one tile only) well defined.
    """
    def ramp(n: int) -> np.ndarray:
        return np.maximum(np.sin(np.pi * (np.arange(n) + 0.5) / n), 1e-3).astype(np.float32)

    window = np.outer(ramp(height), ramp(width))
    window.setflags(write=False)
    return window
