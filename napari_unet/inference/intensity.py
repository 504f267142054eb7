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
