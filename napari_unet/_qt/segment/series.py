"""Time series of volumes in the Segment widget: which 4D and 5D layers feed the core, and how.

A 4D layer is read as T, Z, Y, X, napari's order (the time slider above the depth slider),
unless napari's axis labels name its two leading axes the other way round (z, t: Z, T, Y, X,
as many files store volumes over time): every time point is a volume, segmented into 3D
objects. Channels come as RGB(A) or as one more axis, first (C, T, Z, Y, X), second
(T, C, Z, Y, X: OME-Zarr's order) or third (T, Z, C, Y, X: ImageJ hyperstacks').
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from napari_unet._qt.layers import ModelInput, axis_kind, axis_label, model_input
from napari_unet.inference.images import validate_image

ALL_TIMES, ONE_TIME = "all time points", "displayed time point"


def segment_input(layer, n_channels: int) -> ModelInput:
    """:func:`~napari_unet._qt.layers.model_input`, and time series of volumes besides (four
    spatial axes); raises ValueError saying why the layer cannot be segmented.
    """
    if getattr(layer, "multiscale", False):
        return model_input(layer, n_channels)  # which says why not
    data = layer.data
    shape = np.shape(data)
    axis = len(shape) - 1 if getattr(layer, "rgb", False) else _channel_axis(shape, n_channels)
    if len(shape) - (axis is not None) < 4:  # an image or a stack, as the other widgets take them
        return model_input(layer, n_channels)
    if len(shape) - (axis is not None) > 4:
        raise ValueError(
            f"shape {shape} has more than 4 spatial dimensions (T, Z, Y, X) for a model taking "
            f"{n_channels} channel{'s' * (n_channels != 1)}: open one channel per layer "
            "(e.g. File › Open with channels split, or viewer.add_image(data, channel_axis=1)), "
            "or load a model trained on this many channels"
        )
    if 0 in shape:
        raise ValueError(f"the image is empty (shape {shape}); load an image with pixels in it")
    source = ModelInput(data, axis, tuple(ax for ax in range(len(shape)) if ax != axis))
    first = source.plane(0)  # a view: a layer held lazily is not read
    validate_image(first.data, n_channels, first.channel_axis)  # pixels that are not numbers, channels
    return source


def is_series(source: ModelInput) -> bool:
    """Whether ``source`` is a time series of volumes (T and Z, Y, X)."""
    return len(source.spatial_axes) == 4


NAPARI_ORDER = "TZ"  # a series' two leading spatial axes when its axis labels do not say


def series_order(viewer, layer, source: ModelInput) -> str:
    """"TZ" or "ZT": the order of a series' time and depth axes, as napari's axis labels name
    them (z/depth, t/time; one named is enough), else napari's T, Z. Raises ValueError when
    they contradict each other or name another axis (c, y, x) there.
    """
    first, second = source.spatial_axes[:2]
    names = [axis_label(viewer, layer, ax) for ax in (first, second)]
    kinds = [axis_kind(name) for name in names]
    example = "e.g. viewer.dims.axis_labels = ('z', 't', 'y', 'x')"
    for ax, name, kind in zip((first, second), names, kinds):
        if kind not in ("T", "Z", None):
            raise ValueError(
                f"axis {ax} is labelled {name!r}, where a time series of volumes has time or depth: "
                f"label axes {first} and {second} 't' and 'z' in the order they are ({example}), or open "
                "the channels as separate layers"
            )
    if kinds[0] is not None and kinds[0] == kinds[1]:
        raise ValueError(
            f"axes {first} and {second} are both labelled {'depth' if kinds[0] == 'Z' else 'time'} "
            f"({names[0]!r}, {names[1]!r}): label one 't' and the other 'z', in the order they are ({example})"
        )
    if kinds[0] is None and kinds[1] is None:
        return NAPARI_ORDER
    if kinds[0] is not None:
        return kinds[0] + ("Z" if kinds[0] == "T" else "T")
    return ("Z" if kinds[1] == "T" else "T") + kinds[1]


def series_axes(source: ModelInput, order: str = NAPARI_ORDER) -> str:
    """The letters of a series' axes for the core, e.g. ``"TZYX"``, ``"ZTYX"``, ``"TCZYX"``, ``"TZYXC"``."""
    letters = dict(zip(source.spatial_axes, order + "YX"))
    return "".join(letters.get(ax, "C") for ax in range(np.ndim(source.data)))


def time_axis(source: ModelInput, order: str = NAPARI_ORDER) -> int:
    """The layer axis of a series' time points."""
    return source.spatial_axes[order.index("T")]


def time_point(source: ModelInput, t: int, order: str = NAPARI_ORDER) -> tuple[ModelInput, str]:
    """The volume at time point ``t`` (T dropped), and its axes letters (``"ZYX"``, ``"CZYX"`` ...)."""
    axis = time_axis(source, order)
    time_first = replace(source, spatial_axes=(axis, *(ax for ax in source.spatial_axes if ax != axis)))
    return time_first.plane(t), series_axes(source, order).replace("T", "")


def swap_tz(array: np.ndarray, order: str) -> np.ndarray:
    """A whole series' array (its last four axes spatial) with Z and T swapped for a layer of
    ``order`` "ZT" (a view): the layer's layout to T, Z, Y, X, the order of the core's
    probabilities, and back. As it is for "TZ".
    """
    return np.swapaxes(array, -4, -3) if order == "ZT" else array


def _channel_axis(shape: tuple[int, ...], n_channels: int) -> int | None:
    """Where a layer of four or more axes holds a model's ``n_channels`` channels: first if they
    fit there (as for stacks), else (5D) the one of the second and third axes that has that many.
    """
    if n_channels == 1 or len(shape) < 4:
        return None
    if shape[0] == n_channels:
        return 0
    if len(shape) < 5:
        return None
    fits = [ax for ax in (1, 2) if shape[ax] == n_channels]
    if len(fits) != 1:
        where = "none" if not fits else "both"
        raise ValueError(
            f"the model takes {n_channels} channels and {where} of axes 1 and 2 of shape {shape} "
            f"{'has' if not fits else 'have'} {n_channels} entries: put the channels first "
            "(C, T, Z, Y, X) or load a model trained on this many channels"
        )
    return fits[0]
