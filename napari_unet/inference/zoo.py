"""Segmenting with a Model Zoo model that napari-unet did not write.

The model runs through ``bioimageio.core`` with its own pre- and post-processing
(:meth:`napari_unet.model.bioimageio.ZooModel.predict`), plane by plane for a 2D model,
volume by volume for a 3D one. Its output is then read as its :attr:`output_kind` says:
probabilities of objects become napari-unet's three channels (background, interior,
boundary) and go through the same seeded watershed as the shipped model's, so the
post-processing settings apply to them too; labels come back as they are (a 0/1 mask
split into its connected pieces); one probability per class gives the class map.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage as ndi

from napari_unet.inference.images import check_axes, from_canonical, to_canonical
from napari_unet.inference.instances import InstanceParams, instances_3d, instances_from_probabilities
from napari_unet.model.bioimageio import BOUNDARY_WORDS
from napari_unet.progress import Progress

if TYPE_CHECKING:
    from napari_unet.model.bioimageio import ZooModel


def segment_zoo_iter(
    image, model: ZooModel, *, axes: str | None = None, spacing=(1.0, 1.0, 1.0), channel_axis: int | None = None,
    device=None, params: InstanceParams | None = None,
) -> Generator[Progress, None, tuple[np.ndarray, np.ndarray, str]]:
    """Labels (or a class map) from a foreign Model Zoo model; yields a Progress per unit.

    Returns the labels (the image's axes), the probabilities read from the model's output
    and the order of their spatial axes, which :func:`napari_unet.inference.segment.segment_iter`
    hands on as a ``Segmentation``.

    ``axes`` as for :func:`napari_unet.inference.segment.segment_iter`; without it a 2D
    image (with ``channel_axis`` for colour) is one plane and a 3D one a stack of planes.
    With a Z axis, objects are 3D (:func:`instances_3d`, split with ``spacing``).
    """
    params = params or InstanceParams()
    image = np.asarray(image)
    if axes is None:
        spatial = image.ndim - (channel_axis is not None)
        if spatial not in (2, 3):
            raise ValueError(f"{model.name} takes a 2D image or a stack of planes; this one has shape {image.shape}")
        axes = ("ZYX" if model.config.spatial_dims == 3 else "TYX")[-spatial:]  # a stack: planes one by one
        if channel_axis is not None:
            axes = _with_channel(axes, channel_axis % image.ndim)
    given = check_axes(axes, image.ndim)
    data, order = to_canonical(image, given)
    unit_axes = "ZYX" if model.config.spatial_dims == 3 else "YX"
    if unit_axes == "ZYX" and "Z" not in order:
        raise ValueError(f"{model.name} is a 3D model; give it a volume (axes with a Z)")
    spatial_order = order.replace("C", "")
    lead = spatial_order[: len(spatial_order) - len(unit_axes)]  # axes the units are taken along
    if "C" in order:
        data = np.moveaxis(data, -1, len(lead))  # each unit (C, *spatial), as the model takes it
    elif model.in_channels > 1:
        raise ValueError(f"{model.name} takes {model.in_channels} channels; this image has one")
    units = data.reshape(-1, *data.shape[len(lead):])
    stage = "planes" if len(units) > 1 else "predict"
    outputs = []
    for i, unit in enumerate(units):
        yield Progress(i, len(units), stage)
        outputs.append(_read(model, model.predict(unit, device=_device(device))))
    yield Progress(len(units), len(units), stage)
    shape = tuple(data.shape[: len(lead)]) + tuple(outputs[0].shape[1:])
    probs = np.stack(outputs, axis=1).reshape(outputs[0].shape[0], *shape)
    if model.output_kind == "labels":
        labels = _labels([o[-1] for o in outputs]).reshape(shape)
    elif model.output_kind == "classes":
        labels = np.argmax(probs, axis=0).astype(np.int32)
    elif "Z" in spatial_order:
        frames = probs.reshape(3, -1, *probs.shape[-3:])
        labels = np.zeros(frames.shape[1:], np.int32)
        for t in range(frames.shape[1]):
            found = instances_3d(frames[:, t], params, spacing)
            labels[t] = np.where(found > 0, found + labels[:t].max(initial=0), 0)
        labels = labels.reshape(shape)
    else:
        labels = instances_from_probabilities(probs, params, "instances", shape)
    probs = probs[:3] if model.output_kind == "labels" else probs
    return from_canonical(labels, given), probs, spatial_order


def _read(model: ZooModel, output: np.ndarray) -> np.ndarray:
    """One unit's output as (channels, *spatial) float32: napari-unet's three object
    channels, the class probabilities, or for labels the three channels made from them
    followed by the labels themselves.
    """
    out = np.asarray(output)
    if "channel" not in model.output_axes:
        out = out[None]
    kind = model.output_kind
    if kind == "labels":
        labels = out[0].astype(np.int32)
        inside = labels > 0
        edge = inside & (ndi.grey_dilation(labels, size=3) != ndi.grey_erosion(labels, size=3))
        return np.stack([~inside, inside & ~edge, edge, labels]).astype(np.float32)
    lo, hi = float(out.min()), float(out.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise ValueError(f"{model.name}'s output runs from {lo:.3g} to {hi:.3g}, so it is neither "
                         "probabilities (0 to 1) nor labels; napari-unet cannot make masks from it")
    out = np.clip(out.astype(np.float32), 0, 1)
    if kind == "foreground":
        p = out[-1]  # the only channel, or the second after background
        return np.stack([1 - p, p, np.zeros_like(p)])
    if kind == "foreground+boundary":
        b_index = 1 if any(w in model.classes[1].lower() for w in BOUNDARY_WORDS) else 0
        fg, b = out[1 - b_index], out[b_index]
        interior = np.clip(fg - b, 0, 1)
        return np.stack([1 - fg, interior, fg - interior])
    return out  # instances (background, interior, boundary) or classes: as they are


def _labels(units: list[np.ndarray]) -> np.ndarray:
    """Each unit's labels output as it is (a 0/1 mask split into its connected pieces),
    ids unique across units.
    """
    found, offset = [], 0
    for labels in units:
        labels = labels.astype(np.int32)
        if labels.max(initial=0) <= 1:
            labels = ndi.label(labels > 0)[0].astype(np.int32)
        found.append(np.where(labels > 0, labels + offset, 0))
        offset += int(labels.max(initial=0))
    return np.stack(found)


def _with_channel(axes: str, position: int) -> str:
    return axes[:position] + "C" + axes[position:]


def _device(device) -> str:
    return "cpu" if device is None else str(device)
