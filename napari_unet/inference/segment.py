"""One call from an image to instance labels."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
import torch

from napari_unet import checks
from napari_unet.inference.images import spatial_shape
from napari_unet.inference.instances import InstanceParams, instances_from_probabilities, model_params
from napari_unet.inference.predict import predict_iter
from napari_unet.inference.zoom import auto_zoom
from napari_unet.labels import median_diameter
from napari_unet.model.card import MAX_ZOOM, MIN_ZOOM
from napari_unet.model.files import image_channels, load_model, model_card
from napari_unet.model.unet import UNet
from napari_unet.progress import Progress, restaged, run


@dataclass(frozen=True)
class Segmentation:
    """Labels plus the probabilities they came from (kept to re-threshold without the network)."""

    labels: np.ndarray  # int32, the image's spatial shape, 0 = background
    probabilities: np.ndarray  # float32 (n_classes, *spatial), at the pixels the network saw
    zoom: float = 1.0  # the magnification the network saw the image at (Y and X of probabilities)


def segment_iter(
    image,
    model: UNet | None = None,
    *,
    channel_axis: int | None = None,
    device: str | torch.device | None = None,
    params: InstanceParams | None = None,
    zoom: float | None = None,
    tta: bool = False,
    **predict_kwargs,
) -> Generator[Progress, None, Segmentation]:
    """Predict, then post-process; yields :class:`Progress` and returns a :class:`Segmentation`.

    ``params=None`` uses the post-processing settings tuned for the model (its card's
    ``postprocess``; see :func:`napari_unet.inference.instances.model_params`). ``zoom=None``
    resamples images of very small or large objects: when the objects found are under
    10 px or over 22 px across, the network runs again on the image magnified to make
    them ~13 px, or shrunk to make them ~18 px (:func:`auto_zoom`); a model fine-tuned
    at a zoom (its card's ``zoom``) sees every image at that zoom instead. A number
    fixes the magnification (``1``: as it is). ``tta`` averages the network's output
    over each tile's 8 mirrored and rotated views (8 times the work; see
    :func:`napari_unet.inference.predict.predict_iter`); with automatic zoom the first pass, which
    only measures the objects, goes without.
    A second pass reports its progress as stage ``"zoom"`` (``"tta"`` when only ``tta``
    makes it). Keyword arguments
    (``tile_size``, ``overlap``, ``batch_size``) go to :func:`napari_unet.inference.predict.predict_iter`.
    """
    model = checks.model_or_none(model)
    model = load_model() if model is None else model
    card = model_card(model)
    if params is not None and not isinstance(params, InstanceParams):
        raise TypeError(f"params must be InstanceParams (napari_unet.InstanceParams(...)), got {type(params).__name__}")
    params = params or model_params(card)
    if zoom is not None:
        zoom = checks.number(zoom, "zoom", MIN_ZOOM, MAX_ZOOM)
    kwargs = {"channel_axis": channel_axis, "device": device, **predict_kwargs}
    if zoom is None and card.zoom is not None:  # fine-tuned at a zoom: it sees images there
        zoom = card.zoom
    used = 1.0 if zoom is None else zoom  # predict_iter checks its range before any work
    auto = zoom is None and card.task == "instances"  # a first pass measures the objects
    probs = yield from predict_iter(image, model, zoom=used, keep_zoom=True, tta=tta and not auto, **kwargs)
    shape = spatial_shape(image, image_channels(model), channel_axis)
    labels = yield from _instances(probs, params, card.task, shape)
    if auto:
        used = auto_zoom(median_diameter(labels), shape[-2:])
        if used != 1.0 or tta:
            probs = None  # freed before the second pass allocates its own
            second = predict_iter(image, model, zoom=used, keep_zoom=True, tta=tta, **kwargs)
            probs = yield from restaged(second, "zoom" if used != 1.0 else "tta")
            labels = yield from _instances(probs, params, card.task, shape)
    return Segmentation(labels, probs, used)


def _instances(probs, params, task, shape) -> Generator[Progress, None, np.ndarray]:
    yield Progress(0, 1, "instances")
    labels = instances_from_probabilities(probs, params, task, shape)
    yield Progress(1, 1, "instances")
    return labels


def segment(image, model: UNet | None = None, **kwargs) -> np.ndarray:
    """Segment ``image`` into int32 instance labels of its spatial shape.

    Takes the arguments of :func:`segment_iter`. ``model=None`` uses the nuclei model
    shipped with the package.

    Examples
    --------
    >>> labels = segment(image)                        # 2D grayscale, any dtype
    >>> labels = segment(rgb)                          # (Y, X, 3)
    >>> labels = segment(stack, channel_axis=1)        # (Z, C, Y, X)
    >>> labels = segment(tiny_nuclei, zoom=2)          # the network sees it magnified 2x
    >>> labels = segment(image, tta=True)              # 8 views averaged: slower, a little better
    """
    return run(segment_iter(image, model, **kwargs)).labels
