"""Checking what a caller hands the public functions, before any work, with messages for people.

Each helper takes a value as given, returns it in the form the core uses, or raises a
``TypeError``/``ValueError`` that says what was given, what is expected and what to do.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi


def number(value, name: str, low: float | None = None, high: float | None = None, *,
           integer: bool = False, low_open: bool = False, high_open: bool = False) -> float | int:
    """``value`` as a (finite) number within [low, high] (open ends where asked)."""
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        what = "a whole number" if integer else "a number"
        raise TypeError(f"{name} must be {what}, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if (too_low or too_high) and low is not None and high is not None and not (low_open or high_open):
        raise ValueError(f"{name} must be between {low:g} and {high:g}, got {value!r}")
    if too_low or too_high:
        lo = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
        hi = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
        raise ValueError(f"{name} must be {' and '.join(s for s in (lo, hi) if s)}, got {value!r}")
    return int(value) if integer else float(value)


def budget(max_steps, max_seconds) -> tuple[int | None, float | None]:
    """A training budget: steps (>= 1) and/or seconds (> 0); None means not given."""
    steps = None if max_steps is None else number(max_steps, "max_steps", 1, integer=True)
    seconds = None if max_seconds is None else number(max_seconds, "max_seconds", 0, low_open=True)
    return steps, seconds


def image_list(images, name: str = "images") -> list:
    """A list of images; one array where a list is expected is refused with how to wrap it."""
    if isinstance(images, np.ndarray) or hasattr(images, "__array__") and not isinstance(images, (list, tuple)):
        raise TypeError(f"{name} must be a list of arrays, got one array of shape {np.shape(images)}; "
                        f"pass [{name[:-1]}] for a single one")
    if isinstance(images, (str, bytes, os.PathLike)) or not isinstance(images, Sequence):
        raise TypeError(f"{name} must be a list of arrays, got {type(images).__name__}; "
                        "read files first (e.g. napari_unet.io.read_image)")
    return list(images)


def label_image(labels, name: str = "labels") -> np.ndarray:
    """Integer instance labels (0 = background) from what a user may have saved.

    Integer arrays are taken as they are; float arrays whose values are whole numbers
    (ImageJ saves labels as float32) become integers; a bool mask becomes one object per
    connected region. Anything else is refused, as are negative ids.
    """
    if labels is None or isinstance(labels, (str, bytes, os.PathLike)):
        raise TypeError(f"{name} must be an array of integer labels, got {type(labels).__name__}; "
                        "read label files first (e.g. napari_unet.io.read_image)")
    lab = np.asarray(labels)
    if lab.dtype == np.bool_:
        return ndi.label(lab)[0].astype(np.int32)
    if np.issubdtype(lab.dtype, np.floating):
        if not np.isfinite(lab).all() or not np.array_equal(lab, np.round(lab)):
            raise ValueError(f"{name} are floating-point values that are not all whole numbers; labels are "
                             "object ids (0 = background, 1, 2, ...): save them as integers")
        if lab.size and float(lab.max(initial=0)) > np.iinfo(np.int64).max:
            raise ValueError(f"{name} hold ids too large for integers ({lab.max():g})")
        lab = lab.astype(np.int64)
    elif not np.issubdtype(lab.dtype, np.integer):
        raise TypeError(f"{name} must hold integer object ids, got values of type {lab.dtype}")
    if lab.size and lab.min() < 0:
        raise ValueError(f"{name} hold negative values (down to {lab.min()}); 0 is background and objects "
                         "are 1, 2, ...: remove the negative values (an 'ignore' value? use an annotated mask)")
    if lab.size and int(lab.max()) > 4 * lab.size + 1024:  # sparse huge ids: counting per id would need
        ids, inverse = np.unique(lab, return_inverse=True)  # an array as long as the largest id
        lab = (inverse.reshape(lab.shape) + (ids[0] != 0)).astype(np.int64)
    return lab


def mask(value, shape: tuple[int, ...], name: str) -> np.ndarray:
    """A bool mask of ``shape`` (any numeric array: non-zero is True)."""
    arr = np.asarray(value)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"{name} must be a mask array (bool or numbers), got values of type {arr.dtype}")
    if arr.shape != tuple(shape):
        raise ValueError(f"{name} has shape {arr.shape}, but its labels have {tuple(shape)}: "
                         "give a mask of the labels' shape")
    return arr.astype(bool)


def model_or_none(model, name: str = "model", *, foreign: bool = False):
    """A :class:`~napari_unet.model.unet.UNet`, or None; a path is refused with how to load it.

    ``foreign`` also takes a Model Zoo model napari-unet did not write (it segments, but
    cannot be trained: without ``foreign`` it is refused in those words).
    """
    from napari_unet.model.unet import UNet  # the checks are below the model in the package's layers

    if model is None or isinstance(model, UNet) or type(model).__name__ == "OnnxUNet":  # onnx: not imported here
        return model
    if type(model).__name__ == "ZooModel":
        if foreign:
            return model
        raise TypeError(f"{model.name} is a Model Zoo model that napari-unet did not write: it segments "
                        "(napari_unet.segment), but napari-unet cannot train it or run it tile by tile")
    if isinstance(model, (str, os.PathLike)):
        raise TypeError(f"{name} must be a loaded model, got the path {str(model)!r}; "
                        f"load it first: napari_unet.load_model({str(model)!r})")
    raise TypeError(f"{name} must be a napari_unet UNet (e.g. napari_unet.load_model()), got {type(model).__name__}")
