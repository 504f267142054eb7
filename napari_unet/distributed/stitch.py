"""Stitching labels across block faces, as cellpose's distributed segmentation does.

Each block wrote the objects of its core with ids of its own range. An object that
crosses a face between two blocks was segmented whole by both (each saw it in its halo),
so its two parts touch across the face, nearly pixel for pixel. Stitching reads only the
two planes either side of each face (:func:`face_pairs`), joins the ids that touch into
objects with a sparse connected-components pass (:func:`merge_table`: its size follows
the objects on faces, never the blocks squared nor the image), and rewrites each block's
ids from that table (:func:`relabel_block`), one block at a time. Each object keeps the
smallest of its ids, so relabelling twice changes nothing: a stitch that was interrupted
is simply run again.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from napari_unet.distributed.block import _index
from napari_unet.distributed.blocks import Block, BlockGrid

MIN_CONTACT = 0.5  # ids join when they touch over this fraction of the smaller one's face


def face_pairs(labels, grid: BlockGrid, block: Block, axes: str) -> np.ndarray:
    """(n, 2) ids that continue each other across ``block``'s upper faces (one per
    spatial axis with a neighbour; never along T: time points are separate).
    """
    blocked = [a for a in axes if a != "C"]
    found = [np.zeros((0, 2), np.int64)]
    for axis, letter in enumerate(blocked):
        if letter == "T" or grid.upper_neighbour(block, axis) is None:
            continue
        face = list(block.core)
        end = block.core[axis].stop
        face[axis] = slice(end - 1, end + 1)
        slab = np.asarray(labels[_index(axes, tuple(face))])
        if "C" in axes:  # labels hold one entry along a channel axis
            slab = slab.take(0, axis=axes.index("C"))
        slab = np.moveaxis(slab, axis, 0)
        found.append(_touching(slab[0].ravel(), slab[1].ravel()))
    return np.concatenate(found)


def _touching(below: np.ndarray, above: np.ndarray) -> np.ndarray:
    """Id pairs facing each other over at least MIN_CONTACT of the smaller one's face."""
    both = (below > 0) & (above > 0)
    if not both.any():
        return np.zeros((0, 2), np.int64)
    pairs, contact = np.unique(np.stack([below[both], above[both]], 1).astype(np.int64), axis=0, return_counts=True)
    ids_b, area_b = np.unique(below[below > 0], return_counts=True)
    ids_a, area_a = np.unique(above[above > 0], return_counts=True)
    smaller = np.minimum(area_b[np.searchsorted(ids_b, pairs[:, 0])], area_a[np.searchsorted(ids_a, pairs[:, 1])])
    return pairs[contact >= MIN_CONTACT * smaller]


def merge_table(pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """From touching id pairs, the ids to change (sorted) and what each becomes: the
    smallest id of its connected component. Ids in no pair stay as they are.
    """
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    if not len(pairs):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    ids, inverse = np.unique(pairs, return_inverse=True)
    edges = inverse.reshape(-1, 2)
    graph = coo_matrix((np.ones(len(edges), bool), (edges[:, 0], edges[:, 1])), shape=(len(ids), len(ids)))
    _, component = connected_components(graph, directed=False)
    smallest = np.full(component.max() + 1, np.iinfo(np.int64).max)
    np.minimum.at(smallest, component, ids)
    target = smallest[component]
    moved = target != ids
    return ids[moved], target[moved]


def relabel_block(labels, block: Block, axes: str, sources: np.ndarray, targets: np.ndarray) -> bool:
    """Rewrite ``block``'s core with ``sources`` -> ``targets``; False (and nothing written)
    when none of its ids changes.
    """
    if not len(sources):
        return False
    index = _index(axes, block.core)
    core = np.asarray(labels[index])
    present = np.unique(core)
    hit = np.isin(present, sources)
    if not hit.any():
        return False
    where = np.searchsorted(sources, present[hit])
    changed = np.searchsorted(present, core)
    new_ids = present.copy()
    new_ids[hit] = targets[where]
    labels[index] = new_ids[changed].astype(core.dtype)
    return True
