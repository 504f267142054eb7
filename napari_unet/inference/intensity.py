"""Intensity normalisation of a semantic model, as its plan says (nnU-Net's schemes).

A model's card holds the scheme as plain data (``card.intensity``); training and
prediction both call :func:`normalize_intensity` with it, so a volume is scaled the same
way in both:

- ``{"scheme": "ct", "clip": [lo, hi], "mean": m, "std": s}``: Hounsfield units are
  absolute, so every image is clipped to the training foreground's percentiles and
  standardised with the training foreground's mean and std (one scale for the dataset);
- ``{"scheme": "zscore", "percentiles": [lo, hi]}``: arbitrary units (MR, microscopy)
  differ between images, so each image is clipped to its own percentiles and
  standardised with its own mean and std.
"""

from __future__ import annotations

import numpy as np

SCHEMES = ("ct", "zscore")
SAMPLE = 2_000_000  # voxels used to estimate an image's percentiles and moments


def _subsample(x: np.ndarray) -> np.ndarray:
    flat = x.reshape(-1)
    step = max(1, flat.size // SAMPLE)
    return flat[::step]


def normalize_intensity(image: np.ndarray, intensity: dict) -> np.ndarray:
    """``image`` (any shape, one channel) scaled as ``intensity`` says; float32.

    Parameters
    ----------
    image
        The image or volume, in its own units.
    intensity
        A scheme (see the module's description); ``{}`` is ``zscore`` over percentiles 0.5-99.5.

    Raises
    ------
    ValueError
        For an unknown scheme, or NaN / infinite values in the image.
    """
    x = np.asarray(image, dtype=np.float32)
    if not np.isfinite(x).all():
        raise ValueError("the image contains NaN or infinite values; replace them first (e.g. np.nan_to_num)")
    scheme = intensity.get("scheme", "zscore")
    if scheme == "ct":
        lo, hi = intensity["clip"]
        mean, std = float(intensity["mean"]), max(float(intensity["std"]), 1e-6)
        return ((np.clip(x, lo, hi) - mean) / std).astype(np.float32, copy=False)
    if scheme == "zscore":
        lo, hi = np.percentile(_subsample(x), intensity.get("percentiles", (0.5, 99.5)))
        clipped = np.clip(x, lo, hi)
        sample = _subsample(clipped)
        return ((clipped - float(sample.mean())) / max(float(sample.std()), 1e-6)).astype(np.float32, copy=False)
    raise ValueError(f"unknown intensity scheme {scheme!r}; this version knows {', '.join(SCHEMES)}")


def stack_range(stack: np.ndarray, channel_axis: int | None, low: float = 1.0, high: float = 99.8) -> np.ndarray:
    """The intensities that :func:`~napari_unet.inference.images.normalize_stack` maps to 0
    and 1, per channel, as a (C, 2) float64 array: one scale for all the planes of ``stack``.

    Reads the same subsample as ``normalize_stack`` and makes no float copy of the stack,
    so a volume can be scaled plane by plane (:func:`scale_plane`) as the network takes it.

    Raises
    ------
    ValueError
        If the stack holds NaN or infinite values.
    """
    arr = np.asarray(stack)
    chans = arr[None] if channel_axis is None else np.moveaxis(arr, channel_axis, 0)
    ranges = np.empty((chans.shape[0], 2), np.float64)  # as np.percentile gives them
    for c, ch in enumerate(chans):
        flat = ch.reshape(-1, ch.shape[-1])  # (planes * Y, X), as normalize_stack sees it
        if np.issubdtype(flat.dtype, np.floating) and not all(np.isfinite(p).all() for p in flat):
            raise ValueError("the image contains NaN or infinite values; replace them first (e.g. np.nan_to_num)")
        ranges[c] = percentile_range(flat, low, high)
    return ranges


def percentile_range(channel: np.ndarray, low: float, high: float) -> tuple:
    """The ``low`` and ``high`` percentiles of a 2D ``channel``, on a regular subsample of
    about a million pixels (float64 images in float64, others in float32); its minimum and
    maximum where the two meet (a nearly constant channel).
    """
    step = max(1, int(np.sqrt(channel.size / 1_000_000)))
    sample = channel[::step, ::step]
    sample = sample.astype(np.float64 if sample.dtype == np.float64 else np.float32, copy=False)
    lo, hi = np.percentile(sample, (low, high))
    if hi - lo < 1e-6:
        lo, hi = float(channel.min()), float(channel.max())
    return lo, hi  # numpy's scalars: the arithmetic with them stays as it was


def scale_plane(plane: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """A (C, Y, X) or (C, Z, Y, X) block mapped to 0-1 by its channels' (C, 2) ``ranges``
    (:func:`stack_range`), float32: what ``normalize_stack`` gives for those pixels.
    """
    out = np.empty(plane.shape, np.float32)
    for c, (ch, (lo, hi)) in enumerate(zip(plane, ranges)):
        ch = ch.astype(np.float32, copy=False)
        if not np.isfinite(hi - lo):  # the range overflows (values near the type's limits)
            ch, lo, hi = ch * 0.5, lo * 0.5, hi * 0.5
        scale = 1.0 / (hi - lo) if hi - lo > 1e-12 else 0.0
        np.subtract(ch, lo, out=out[c])
        out[c] *= scale
    return out
