"""A region layer's area on an image's pixel grid, whatever the two layers' scale and translate.

napari places layers in world coordinates (``data * scale + translate``), aligning
their trailing axes; a region drawn in a Labels layer of half the resolution, or in a
Shapes layer moved with the image, covers other pixel indices than its data says. The
region is resampled (nearest pixel) or its shapes are moved onto the image's grid before
they are rasterised. A region with fewer axes than a stack covers every plane.
"""

from __future__ import annotations

import numpy as np
from napari.layers import Labels, Shapes


def region_mask(region, image_layer, spatial_axes: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    """Bool mask of ``shape`` (the image's spatial shape): the non-zero pixels of a Labels
    layer or the inside of a Shapes layer's shapes. Raises ValueError saying why not.
    """
    if not isinstance(region, (Labels, Shapes)):
        raise ValueError("pick a region layer (Shapes or Labels) or another choice of what to learn from")
    for layer in (region, image_layer):
        if not _axis_aligned(layer):
            raise ValueError(f"'{layer.name}' is rotated, sheared or has an affine transform; "
                             "a region layer must only be scaled or moved relative to the image")
    if not 2 <= region.ndim <= len(shape):
        raise ValueError(f"the region layer '{region.name}' has {region.ndim} dimensions, the image "
                         f"{len(shape)}: draw the region over the image")
    axes = list(spatial_axes)[-region.ndim :]  # napari aligns trailing axes
    scale = np.asarray(image_layer.scale)[axes] / np.asarray(region.scale)
    offset = (np.asarray(image_layer.translate)[axes] - np.asarray(region.translate)) / np.asarray(region.scale)
    grid = shape[-region.ndim :]
    if isinstance(region, Labels):
        mask = _resampled(np.asarray(region.data) != 0, scale, offset, grid)
    else:  # shapes: region data -> image data, then rasterised on the image's grid
        moved = [(np.asarray(d) - offset) / scale for d in region.data]
        mask = np.zeros(grid, bool)
        if moved:
            mask = Shapes(moved, shape_type=region.shape_type).to_labels(labels_shape=grid) > 0
    return np.broadcast_to(mask, shape).copy()


def _resampled(mask: np.ndarray, scale: np.ndarray, offset: np.ndarray, grid: tuple[int, ...]) -> np.ndarray:
    """``mask`` at the region data coordinates of each pixel of ``grid`` (nearest; outside = False)."""
    index, inside = [], []
    for n, s, o, size in zip(grid, scale, offset, mask.shape):
        at = np.floor(np.arange(n) * s + o + 0.5).astype(np.int64)
        inside.append((at >= 0) & (at < size))
        index.append(np.clip(at, 0, size - 1))
    out = mask[np.ix_(*index)]
    for axis, valid in enumerate(inside):
        out &= np.expand_dims(valid, [a for a in range(len(grid)) if a != axis])
    return out


def _axis_aligned(layer) -> bool:
    ndim = layer.ndim
    return (np.allclose(layer.rotate, np.eye(ndim)) and np.allclose(layer.shear, 0)
            and np.allclose(layer.affine.affine_matrix, np.eye(ndim + 1)))
