"""A 2D network's answer for a volume seen from three sides: its XY, ZY and ZX planes averaged.

When voxels are near cubes, a nucleus cut along Z looks like one cut along Y, so a 2D network
trained on XY planes can answer in the two other orientations too; averaging the three gives
every voxel a probability that also saw its neighbours along Z, which XY planes never do (the
tri-planar ensembles of 2.5D segmentation). With coarse Z the side planes are squashed
images the network never learnt, so the averaging is kept to near-isotropic volumes.
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np

from napari_unet.inference.intensity import scale_plane
from napari_unet.inference.predict import as_float, predict_iter, quantize
from napari_unet.inference.zoom import resample
from napari_unet.model.unet import UNet
from napari_unet.progress import Progress, relay

# Z spacing within this factor of the in-plane spacing, finer or coarser: the side planes,
# resampled to square pixels, are stretched at most this much, and a nucleus keeps most of
# its planes. Beyond it the network sees the side planes' blur (the PSF is longer in Z) and
# interpolated rows, and its answer there is worse than none.
NEAR_ISOTROPIC = 1.5


def near_isotropic(spacing: tuple[float, float, float]) -> bool:
    """Whether voxels of ``spacing`` (Z, Y, X) are close enough to cubes (:data:`NEAR_ISOTROPIC`)
    for the ZY and ZX planes to be averaged in.
    """
    z, y, x = (float(s) for s in spacing)
    ratio = z / np.sqrt(y * x)
    return 1 / NEAR_ISOTROPIC <= ratio <= NEAR_ISOTROPIC


def three_orientations_iter(
    xy: np.ndarray,
    planes: np.ndarray,
    model: UNet,
    spacing: tuple[float, float, float],
    depth: int,
    ranges: np.ndarray | None = None,
    **predict_kwargs,
) -> Generator[Progress, None, np.ndarray]:
    """Average the ZY and ZX planes' probabilities into the XY planes' ones, volume by volume.

    Parameters
    ----------
    xy
        (n_classes, N * Z, y, x) probabilities of the XY planes of N volumes of ``depth``
        planes each, at the pixels the network saw (Y and X zoomed), float32 or uint8
        (0-255, :func:`~napari_unet.inference.predict.quantize`). Overwritten with the
        average, and returned.
    planes
        (N * Z, Y, X) or (N * Z, Y, X, C) image those planes came from: normalised, or
        scaled here by ``ranges``.
    model
        The 2D network that predicted ``xy``.
    spacing
        Voxel size (Z, Y, X): the side planes are resampled to square pixels before the
        network sees them, and back to the volume's planes after.
    depth
        Planes per volume (Z).
    ranges
        (N * Z, C, 2) intensities mapped to 0 and 1 per plane and channel
        (:func:`~napari_unet.inference.intensity.stack_range`); None: ``planes`` is normalised.
    **predict_kwargs
        ``device``, ``tile_size``, ``overlap``, ``batch_size``, ``tta`` for
        :func:`~napari_unet.inference.predict.predict_iter`.

    Yields
    ------
    Progress
        Side planes done, of all volumes' (stage ``"orientations"``).
    """
    z_step = float(spacing[0]) / float(np.sqrt(spacing[1] * spacing[2]))  # planes -> in-plane pixels
    zoom = xy.shape[-1] / planes.shape[2]  # the network's magnification in Y and X
    volumes = xy.shape[1] // depth
    side_shape = (max(1, int(round(depth * z_step * zoom))), *xy.shape[-2:])  # square pixels, as XY saw them
    per_volume = side_shape[1] + side_shape[2]
    total = volumes * per_volume
    kwargs = {**predict_kwargs, "normalized": True, "zoom": 1.0, "keep_zoom": True}
    for v in range(volumes):
        block = planes[v * depth : (v + 1) * depth]
        block = block[None] if block.ndim == 3 else np.moveaxis(block, -1, 0)  # (C, Z, Y, X)
        if ranges is None:
            block = block.astype(np.float32, copy=False)
        else:  # one scale per volume: its first plane's
            block = scale_plane(block, ranges[v * depth])
        # Y and X first, as the XY planes were (area when shrinking), then Z alone
        iso = resample(resample(block, (depth, *xy.shape[-2:])), side_shape)
        side = np.zeros((xy.shape[0], *side_shape), np.float32)
        done = v * per_volume
        for axis, count in ((2, side_shape[1]), (3, side_shape[2])):  # ZX planes (one per row), ZY planes
            stack = np.moveaxis(iso, axis, 0)  # (rows or columns, C, Z', other)
            job = predict_iter(np.ascontiguousarray(stack), model, channel_axis=1, **kwargs)
            probs = yield from relay(job, _planes_done(done, count, total))
            side += np.moveaxis(probs, 1, axis)
            done += count
        del iso, probs
        side = resample(side, (depth, *xy.shape[-2:]))  # the two side answers, summed, at the volume's planes
        for z in range(depth):  # plane by plane: uint8 planes are averaged in float
            plane = as_float(xy[:, v * depth + z]) + side[:, z]
            plane /= 3.0
            xy[:, v * depth + z] = plane if xy.dtype != np.uint8 else quantize(plane)
    return xy


def _planes_done(offset: int, planes: int, total: int):
    """A tile-counting job's progress as side planes done, ``offset`` in, of ``total``."""
    return lambda step: Progress(offset + (step.done * planes) // max(step.total, 1), total, "orientations")
