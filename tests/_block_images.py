"""Block-wise tests' pieces: a hand-set instance network and zarr images of disks and balls."""

from __future__ import annotations

import numpy as np
import torch
import zarr
from _click_models import blank_unet

from napari_unet.model.card import ModelCard
from napari_unet.model.unet import UNet

BLOCK = 64  # block edge of the 2D tests: the image below is 4 x 4 blocks


def threshold_instance_unet(gain: float = 20.0) -> UNet:
    """``UNet(1, 3, base_channels=4, depth=2)`` whose interior is every pixel brighter than
    half the normalised range: each bright blob is one object, wherever the block edges fall.
    """
    model = blank_unet(1, 3)
    with torch.no_grad():
        last = model.ups[-1].conv
        model.inc[0].weight[0, 0, 1, 1] = 1.0
        for conv in (model.inc[3], last[0], last[3]):
            conv.weight[0, 0, 1, 1] = 1.0
        model.head.weight[1, 0, 0, 0] = gain
        model.head.bias[1] = -gain / 2
        model.head.bias[2] = -50.0  # never boundary
    model.card = ModelCard(name="threshold-instances", postprocess={"min_relative_size": 0.0})
    return model.eval()


def disks_2d(shape=(256, 256), seed: int = 0) -> np.ndarray:
    """Bright disks (radius 7-9) on a noisy dark background, the top-right corner left empty,
    plus a bar across a block border (rows 100-108, columns 44-84): float32.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    image = 10 + rng.normal(0, 1, shape)
    for cy in range(12, shape[0], 28):
        for cx in range(12, shape[1], 28):
            if cy < shape[0] // 2 and cx > 100:  # the empty corner: its block is skipped as flat
                continue
            if 92 <= cy <= 116:
                continue  # room for the bar
            r = rng.uniform(7, 9)
            jy, jx = rng.uniform(-3, 3, 2)
            image[(yy - cy - jy) ** 2 + (xx - cx - jx) ** 2 <= r**2] = 110
    image[100:109, 44:84] = 110
    return image.astype(np.float32)


def balls_3d(shape=(32, 80, 80), seed: int = 0) -> np.ndarray:
    """Bright balls (radius 5-6) in a noisy volume, one of them across the Z and Y block faces."""
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.mgrid[: shape[0], : shape[1], : shape[2]]
    image = 10 + rng.normal(0, 1, shape)
    centres = [(16, 40, 20), (8, 15, 60), (24, 62, 55), (7, 62, 15), (25, 15, 25), (16, 42, 62)]
    for c in centres:
        r = rng.uniform(5, 6)
        image[(zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 <= r**2] = 110
    return image.astype(np.float32)


def write_zarr(path, image: np.ndarray, chunks: int = 32) -> str:
    """``image`` as a plain zarr array (format 2) at ``path``."""
    z = zarr.create_array(str(path), shape=image.shape, chunks=(chunks,) * image.ndim, dtype=image.dtype,
                          zarr_format=2, overwrite=True)
    z[...] = image
    return str(path)


def write_ome_zarr(path, image: np.ndarray, axes: str, scale: tuple[float, ...]) -> str:
    """``image`` as a one-level OME-Zarr (NGFF 0.4) image at ``path``."""
    group = zarr.open_group(str(path), mode="w", zarr_format=2)
    array = group.create_array("0", shape=image.shape, chunks=(32,) * image.ndim, dtype=image.dtype,
                               chunk_key_encoding={"name": "v2", "separator": "/"})
    array[...] = image
    group.attrs["multiscales"] = [{
        "version": "0.4",
        "axes": [{"name": a.lower(), "type": "space", "unit": "micrometer"} for a in axes],
        "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": list(scale)}]}],
    }]
    return str(path)
