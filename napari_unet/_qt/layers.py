"""Between napari layers and the core: what an image layer feeds the model, and where masks go.

Everything here runs on the main thread (it reads the viewer or writes layers); the
core never sees a layer, only arrays.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
from napari.layers import Labels

from napari_unet.inference.images import validate_image
from napari_unet.io.napari_hooks import AFFINE


@dataclass(frozen=True)
class ModelInput:
    """An image layer's pixels as the core takes them."""

    data: object  # the layer's array (not copied; the worker reads it)
    channel_axis: int | None  # passed to the core; None for grayscale
    spatial_axes: tuple[int, ...]  # the layer's axes that the labels have (scale/translate)

    @property
    def is_stack(self) -> bool:
        return len(self.spatial_axes) == 3

    def plane(self, index: int) -> ModelInput:
        """The same input restricted to one plane along the first spatial axis."""
        first = self.spatial_axes[0]
        picked = tuple(index if ax == first else slice(None) for ax in range(np.ndim(self.data)))
        axis = self.channel_axis
        if axis is not None and axis % np.ndim(self.data) > first:
            axis = axis % np.ndim(self.data) - 1
        return ModelInput(self.data[picked], axis, self.spatial_axes[1:])


def model_input(layer, n_channels: int) -> ModelInput:
    """How ``layer`` feeds a model taking ``n_channels``; raises ValueError saying why it can't.

    RGB(A) layers given to a 1-channel model are averaged to grayscale by the core; a
    non-RGB layer whose first axis has ``n_channels`` entries is read as channels-first.
    """
    if getattr(layer, "multiscale", False):
        raise ValueError("multiscale (pyramid) layers are not supported; open the full-resolution level")
    data = layer.data
    ndim = np.ndim(data)
    if getattr(layer, "rgb", False):
        axis = ndim - 1
    elif n_channels > 1 and ndim >= 3 and np.shape(data)[0] == n_channels:
        axis = 0
    else:
        axis = None
    if axis is None and n_channels == 1 and ndim == 3 and np.shape(data)[-1] in (3, 4):
        # the core would take (Y, X, 3) as RGB; napari shows it as a stack, so do we
        raise ValueError(
            f"shape {np.shape(data)} is ambiguous (3-4 planes or RGB?); "
            "open it as RGB (rgb=True) or move the short axis first"
        )
    validate_image(data, n_channels, axis)
    spatial = tuple(ax for ax in range(ndim) if ax != axis)
    return ModelInput(data, axis, spatial)


def axes_of(source: ModelInput, stack_axis: str) -> str:
    """The axes string of a stack layer's data for the core: ``stack_axis`` ("Z" or "T") for its
    first spatial axis, then Y and X, and C where its channels are.
    """
    letters = dict(zip(source.spatial_axes, (stack_axis, "Y", "X")))
    return "".join(letters.get(ax, "C") for ax in range(np.ndim(source.data)))


STACK_AXIS = "napari_unet_stack_axis"  # layer metadata: "Z" or "T", the user's answer for the layer

# what napari axis labels name (case-insensitive); napari's own "0", "1", ... name nothing
AXIS_NAMES = {"z": "Z", "depth": "Z", "t": "T", "time": "T", "c": "C", "channel": "C", "channels": "C",
              "y": "Y", "x": "X"}


def axis_label(viewer, layer, axis: int) -> str:
    """The label napari shows for ``layer``'s ``axis``; "" where the viewer has none (layers align at the end)."""
    labels = list(viewer.dims.axis_labels)
    index = len(labels) - layer.ndim + axis
    return str(labels[index]) if 0 <= index < len(labels) else ""


def axis_kind(label: str) -> str | None:
    """The axis an axis label names: "Z" (z, depth), "T" (t, time), "C" (c, channel), "Y" or "X";
    None for any other label.
    """
    return AXIS_NAMES.get(label.strip().lower())


def stack_kind(viewer, layer, source: ModelInput) -> str | None:
    """"Z" or "T" for a stack layer's first spatial axis: the answer given for the layer
    (Segment's 'stack axis'), else napari's axis label of that axis when it says (z, depth,
    t, time); None when nobody said.
    """
    said = layer.metadata.get(STACK_AXIS)
    if said in ("Z", "T"):
        return said
    kind = axis_kind(axis_label(viewer, layer, source.spatial_axes[0]))
    return kind if kind in ("Z", "T") else None


def displayed_plane(viewer, layer, spatial_axes: tuple[int, ...]) -> int:
    """Index of the plane on screen along the layer's first spatial axis."""
    coords = layer.world_to_data(viewer.dims.point)  # one per layer dim (RGB: channel excluded)
    size = np.shape(layer.data)[spatial_axes[0]]
    return int(np.clip(np.round(coords[spatial_axes[0]]), 0, size - 1))


def layer_spacing(layer, axes) -> tuple[float, ...]:
    """The physical size of a pixel of ``layer`` along its ``axes`` (napari's ``scale``)."""
    return tuple(float(s) for s in np.asarray(layer.scale)[list(axes)])


def spatial_transform(layer, spatial_axes: tuple[int, ...]) -> dict:
    """The image layer's scale and translate for a layer over its spatial axes only.

    An RGB layer's channel axis is last and not a layer dimension, so its spatial axes
    index ``scale`` directly, as a channels-first layer's do. A volume read from a
    NIfTI/DICOM file passes on its affine (``metadata["affine"]``), so masks saved as
    NIfTI lie on the scan.
    """
    axes = list(spatial_axes)
    affine = getattr(layer, "metadata", {}).get(AFFINE)
    on_volume = affine is not None and axes[-3:] == list(range(layer.ndim - 3, layer.ndim))
    return {
        "scale": tuple(np.asarray(layer.scale)[axes]),
        "translate": tuple(np.asarray(layer.translate)[axes]),
        "metadata": {AFFINE: affine} if on_volume else {},
    }


def show_probabilities(viewer, image_layer, source: ModelInput, plane, foreground, axis: int = 0) -> None:
    """Show ``foreground`` (1 - P(background), at the image's pixels) as ``<image> probabilities``
    (replaced on each run); a plane's goes in at index ``plane`` along the masks' ``axis``.
    """
    shape = tuple(np.shape(source.data)[ax] for ax in source.spatial_axes)
    name = f"{image_layer.name} probabilities"
    existing = viewer.layers[name] if name in viewer.layers else None
    if existing is not None and existing.data.shape == shape:
        data = np.array(existing.data, np.float32)
    else:
        existing, data = None, np.zeros(shape, np.float32)
    if plane is not None and len(shape) == foreground.ndim + 1:
        np.moveaxis(data, axis, 0)[plane] = foreground
    else:
        data = foreground
    if existing is not None:
        existing.data = data
    else:
        transform = spatial_transform(image_layer, source.spatial_axes)
        transform["metadata"][OUTPUT] = "probabilities"
        viewer.add_image(data, name=name, colormap="magma", opacity=0.5, blending="additive",
                         contrast_limits=(0.0, 1.0), **transform)


OUTPUT = "napari_unet"  # metadata key of the image layers napari-unet makes


def is_output(layer) -> bool:
    """Whether ``layer`` is one napari-unet made (the pickers do not jump to it)."""
    return OUTPUT in getattr(layer, "metadata", {})


def masks_name(image_layer) -> str:
    return f"{image_layer.name} masks"


def find_masks(viewer, image_layer, shape: tuple[int, ...]):
    """The ``<image> masks`` Labels layer, if there is one of the right shape."""
    name = masks_name(image_layer)
    if name in viewer.layers:
        layer = viewer.layers[name]
        if isinstance(layer, Labels) and tuple(layer.data.shape) == tuple(shape):
            return layer
    return None


def write_labels(layer, labels: np.ndarray, plane: int | None = None, axis: int = 0) -> int | None:
    """Replace ``layer``'s labels (or one plane, index ``plane`` along ``axis``) as a single step
    of napari's undo.

    Only changed pixels go through ``data_setitem``, which records them in the layer's
    history, so Ctrl+Z on the layer brings the previous masks and edits back. In a
    stack, a plane's ids are shifted past the other planes' so ids stay unique.
    Returns the number of pixels changed, or None (and changes nothing) when the ids
    do not fit the layer's dtype.
    """
    if plane is not None and layer.data.ndim == labels.ndim + 1:
        planes = np.moveaxis(layer.data, axis, 0)  # a view
        others = _max_outside(planes, plane)
        labels = np.where(labels > 0, labels.astype(np.int64) + others, 0)
        current = planes[plane]
    else:
        plane = None
        current = layer.data
    if labels.size and int(labels.max()) > np.iinfo(layer.data.dtype).max:
        return None
    labels = labels.astype(layer.data.dtype, copy=False)
    changed = current != labels
    where = np.nonzero(changed)
    if plane is not None:
        where = (*where[:axis], np.full(where[0].shape, plane, dtype=where[0].dtype), *where[axis:])
    if where[0].size:
        with layer.block_history():
            layer.data_setitem(where, labels[changed])
    return int(where[0].size)


def new_labels(labels: np.ndarray, full_shape: tuple[int, ...], plane: int | None, axis: int = 0) -> np.ndarray:
    """Data for a new masks layer of ``full_shape``; a plane result fills only its plane
    (index ``plane`` along ``axis``).
    """
    if plane is None or len(full_shape) == labels.ndim:
        return labels
    data = np.zeros(full_shape, labels.dtype)
    np.moveaxis(data, axis, 0)[plane] = labels
    return data


def _max_outside(data: np.ndarray, plane: int) -> int:
    below = int(data[:plane].max()) if plane > 0 else 0
    above = int(data[plane + 1 :].max()) if plane + 1 < len(data) else 0
    return max(below, above)


def commit_memory(data) -> bool:
    """Have the kernel give ``data`` (a NumPy array) its memory now, writable, without changing a
    value: Linux's ``madvise(MADV_POPULATE_WRITE)`` (kernel 5.14 or newer). Safe while another
    thread reads or writes the array. A new masks layer is ``np.zeros``, whose pages the kernel
    hands out on first write, one fault each; on a virtual machine a click's planes then cost
    20-30 ms of faults on the UI thread as the answer is written (measured on a 256×512×512
    layer). Run it in a worker (the call releases the GIL). False where it does nothing
    (another system, an older kernel, not a NumPy array).
    """
    if not sys.platform.startswith("linux") or not isinstance(data, np.ndarray) or not data.nbytes:
        return False
    import ctypes
    import mmap

    try:
        from numpy.lib.array_utils import byte_bounds
    except ImportError:  # NumPy < 2
        byte_bounds = np.byte_bounds

    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    low, high = byte_bounds(data)
    first = low - low % mmap.PAGESIZE  # madvise takes whole pages
    return libc.madvise(first, high - first, MADV_POPULATE_WRITE) == 0


MADV_POPULATE_WRITE = 23  # linux/mman.h
