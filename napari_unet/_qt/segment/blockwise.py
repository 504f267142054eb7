"""Segment a layer held lazily from a zarr on disk block by block, into zarr-backed labels.

An OME-Zarr or zarr image opened in napari (by napari-ome-zarr, or as a dask array)
is never loaded whole here: the block-wise core (:mod:`napari_unet.distributed.local`)
reads it block by block from its file and writes the labels to a zarr array beside it,
``<name>_masks.zarr``. napari shows that array as a Labels layer; brush edits write
straight into it. A run that was interrupted resumes from the blocks already written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_unet.distributed.plan import load_plan
from napari_unet.io.zarr import is_zarr


def zarr_source(layer) -> Path | None:
    """The zarr image a lazily held layer was opened from, or None (an in-memory layer)."""
    data = layer.data
    lazy = getattr(layer, "multiscale", False) or not isinstance(data, np.ndarray)
    path = getattr(getattr(layer, "source", None), "path", None)
    if not lazy or not path:
        return None
    path = Path(path)
    return path if is_zarr(path) else None


def destination(source: Path) -> Path:
    """Where the labels of ``source`` go: ``<name>_masks.zarr`` beside it (an earlier run's
    there is resumed if it is of the same image and model; otherwise ``_masks-2``, ...).
    """
    stem = source.name[: -len(".zarr")] if source.name.endswith(".zarr") else source.name
    n = 1
    while True:
        candidate = source.with_name(f"{stem}_masks{'' if n == 1 else f'-{n}'}.zarr")
        if not candidate.exists() or load_plan(candidate) is not None:
            return candidate
        n += 1


def open_labels_array(path: Path):
    """The labels a block-wise run wrote, opened for editing (zarr writes each brush stroke)."""
    import zarr

    return zarr.open_array(str(path), mode="r+")
