"""Image layouts and intensity normalisation: any dtype and layout in, planes out."""

from __future__ import annotations

import numpy as np

from napari_unet.inference.intensity import percentile_range

_RGB_SIZES = (3, 4)


def validate_image(image, n_channels: int, channel_axis: int | None = None) -> None:
    """Raise ``ValueError`` with a message for the user if ``image`` cannot be segmented.

    Parameters
    ----------
    image
        Array-like with ``shape``/``dtype`` (the pixels are not read).
    n_channels
        Input channels the model expects.
    channel_axis
        Axis holding channels; ``None`` treats a last axis of size 3 or 4 on a
        3D array as RGB(A).
    """
    _layout(np.shape(image), np.dtype(getattr(image, "dtype", np.float64)), n_channels, channel_axis)


def _layout(shape: tuple, dtype: np.dtype, n_channels: int, channel_axis: int | None, max_dims: int = 3):
    """Resolve (channel axis or None, grayscale-from-RGB?, spatial shape), or raise."""
    if len(shape) == 0 or 0 in shape:
        raise ValueError(f"the image is empty (shape {shape}); load an image with pixels in it")
    if not (np.issubdtype(dtype, np.number) or dtype == np.bool_) or np.issubdtype(dtype, np.complexfloating):
        raise ValueError(f"pixels of type {dtype} cannot be segmented; convert the image to numbers")
    ndim = len(shape)
    if channel_axis is None and ndim == 3 and shape[-1] in _RGB_SIZES and n_channels in (1, shape[-1], 3):
        channel_axis = -1  # an RGB(A) image
    if channel_axis is not None:
        if not -ndim <= channel_axis < ndim:
            raise ValueError(f"channel_axis={channel_axis} does not exist in an image of shape {shape}")
        channel_axis %= ndim
        have = shape[channel_axis]
        rgb = have in _RGB_SIZES and channel_axis == ndim - 1
        if have != n_channels and not (rgb and n_channels in (1, 3)):
            raise ValueError(
                f"the model expects {n_channels} channel(s), the image has {have} along axis "
                f"{channel_axis}; pick the channel(s) to use (e.g. image[..., 0]), set channel_axis "
                "correctly, or use a model trained on this many channels"
            )
        spatial = tuple(s for i, s in enumerate(shape) if i != channel_axis)
    else:
        if n_channels != 1:
            raise ValueError(
                f"the model expects {n_channels} channels but no channel axis was given for an "
                f"image of shape {shape}; set channel_axis"
            )
        spatial = tuple(shape)
    if len(spatial) < 2:
        raise ValueError(f"the image has shape {shape}: at least 2 spatial dimensions are needed")
    if len(spatial) > max_dims:
        raise ValueError(
            f"the image has {len(spatial)} spatial dimensions (shape {shape}); 2D images and "
            "3D stacks or time series (planes segmented one by one) are supported — "
            "select one time point or channel first (e.g. image[t])"
        )
    return channel_axis, spatial


def to_planes(image, n_channels: int, channel_axis: int | None = None) -> tuple[np.ndarray, tuple]:
    """Return ``(planes, spatial_shape)`` with planes shaped (N, C, Y, X), in the input dtype.

    RGB(A) images given to a 1-channel model are averaged to grayscale (alpha dropped).
    """
    image = np.asarray(image)
    channel_axis, spatial = _layout(image.shape, image.dtype, n_channels, channel_axis)
    if channel_axis is None:
        arr = image[..., None]
    else:
        arr = np.moveaxis(image, channel_axis, -1)
    if arr.shape[-1] != n_channels:  # RGB(A) -> what the model takes
        rgb = arr[..., :3]
        arr = rgb.mean(axis=-1, keepdims=True, dtype=np.float32) if n_channels == 1 else rgb
    arr = arr.reshape(-1, *arr.shape[-3:])  # (N, Y, X, C)
    return np.moveaxis(arr, -1, 1), spatial


def to_volumes(image, n_channels: int, channel_axis: int | None = None) -> tuple[np.ndarray, tuple]:
    """Return ``(volumes, spatial_shape)`` with volumes shaped (N, C, Z, Y, X), in the input
    dtype: what a 3D network takes (a ZYX volume, or a TZYX series of them).
    """
    image = np.asarray(image)
    channel_axis, spatial = _layout(image.shape, image.dtype, n_channels, channel_axis, max_dims=4)
    if len(spatial) < 3:
        raise ValueError(f"a 3D model needs a volume (Z, Y, X), the image has shape {image.shape}; "
                         "segment 2D images with a 2D model")
    arr = image[..., None] if channel_axis is None else np.moveaxis(image, channel_axis, -1)
    if arr.shape[-1] != n_channels:  # RGB(A) -> what the model takes
        arr = arr[..., :3].mean(axis=-1, keepdims=True, dtype=np.float32)
    arr = arr.reshape(-1, *arr.shape[-4:])  # (N, Z, Y, X, C)
    return np.moveaxis(arr, -1, 1), spatial


def spatial_shape(image, n_channels: int, channel_axis: int | None = None, max_dims: int = 3) -> tuple[int, ...]:
    """The shape of ``image`` without its channel axis, as :func:`to_planes` reads it
    (up to ``max_dims`` spatial axes: 4 for a time series of volumes whose axes are known).
    """
    image = np.asarray(image)
    return tuple(_layout(image.shape, image.dtype, n_channels, channel_axis, max_dims)[1])


def normalize(image: np.ndarray, low: float = 1.0, high: float = 99.8) -> np.ndarray:
    """Map the ``low``/``high`` percentiles of each channel to 0 and 1 (float32).

    ``image`` is (C, Y, X) or (Y, X). Percentiles of large images are estimated on a
    regular subsample. A constant channel becomes zeros, never NaN.

    Raises
    ------
    ValueError
        If the image holds NaN or infinite values.
    """
    x = np.asarray(image)
    # float64 images may hold values float32 cannot (1e300): they are scaled in float64
    x = x.astype(np.float64 if x.dtype == np.float64 else np.float32, copy=False)
    chans = x[None] if x.ndim == 2 else x
    if not np.isfinite(chans).all():
        raise ValueError("the image contains NaN or infinite values; replace them first (e.g. np.nan_to_num)")
    out = np.empty(chans.shape, np.float32)
    for c, ch in enumerate(chans):
        lo, hi = percentile_range(ch, low, high)
        half = not np.isfinite(hi - lo)  # the range overflows (values near the type's limits)
        if half:
            ch, lo, hi = ch * 0.5, lo * 0.5, hi * 0.5
        scale = 1.0 / (hi - lo) if hi - lo > 1e-12 else 0.0
        if ch.dtype == np.float32 and not half:
            np.subtract(ch, lo, out=out[c])
            out[c] *= scale
        else:
            out[c] = (ch - lo) * scale
    return out[0] if x.ndim == 2 else out


AXES = "TZCYX"  # the axis letters: time, depth, channel, rows, columns


def check_axes(axes, ndim: int) -> str:
    """``axes`` (e.g. ``"ZYX"``, ``"TCYX"``) upper-cased, or a ``ValueError`` saying what is wrong."""
    if not isinstance(axes, str):
        raise TypeError(f"axes must be a string of the letters {AXES} such as 'ZYX', got {type(axes).__name__}")
    order = axes.upper()
    if len(order) != ndim:
        raise ValueError(f"axes {axes!r} name {len(order)} axes but the image has {ndim}; give one letter per axis")
    wrong = sorted(set(order) - set(AXES))
    if wrong or len(set(order)) != len(order) or not {"Y", "X"} <= set(order):
        raise ValueError(f"axes {axes!r} must use each of the letters {AXES} at most once and hold Y and X "
                         "(e.g. 'YX', 'ZYX', 'TYX', 'TZYX', 'CYX', 'YXC')")
    return order


def to_canonical(image: np.ndarray, axes: str) -> tuple[np.ndarray, str]:
    """``image`` with its axes in the order ``[T][Z]YX[C]``, and that order."""
    canonical = "".join(a for a in "TZYX" if a in axes) + ("C" if "C" in axes else "")
    return np.moveaxis(image, [axes.index(a) for a in canonical], range(len(canonical))), canonical


def from_canonical(labels: np.ndarray, axes: str) -> np.ndarray:
    """Labels in ``[T][Z]YX`` order back in the spatial order of ``axes`` (its C dropped)."""
    spatial = axes.replace("C", "")
    canonical = "".join(a for a in "TZYX" if a in spatial)
    return np.moveaxis(labels, range(len(canonical)), [spatial.index(a) for a in canonical])


def normalize_stack(stack: np.ndarray, channel_axis: int | None, low: float = 1.0, high: float = 99.8) -> np.ndarray:
    """:func:`normalize` over all the planes of ``stack`` at once (per channel), not plane by plane.

    A volume's planes share one scale, so a plane above the cells is dark, not its noise
    stretched to full range. ``channel_axis`` is the stack's channel axis (kept where it is).
    """
    arr = np.asarray(stack)
    chans = arr[None] if channel_axis is None else np.moveaxis(arr, channel_axis, 0)
    flat = chans.reshape(chans.shape[0], -1, chans.shape[-1])  # (C, planes * Y, X): one 2D image per channel
    out = normalize(flat, low, high).reshape(chans.shape)
    return out[0] if channel_axis is None else np.moveaxis(out, 0, channel_axis)
