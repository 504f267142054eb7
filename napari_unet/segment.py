"""One call from an image to instance labels."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
import torch

from .instances import InstanceParams, instances_from_probabilities, model_params
from .model import UNet
from .modelfile import load_model, model_card
from .predict import predict_iter
from .progress import Progress, run


@dataclass(frozen=True)
class Segmentation:
    """Labels plus the probabilities they came from (kept to re-threshold without the network)."""

    labels: np.ndarray  # int32, the image's spatial shape, 0 = background
    probabilities: np.ndarray  # float32, (n_classes, *spatial)


def segment_iter(
    image,
    model: UNet | None = None,
    *,
    channel_axis: int | None = None,
    device: str | torch.device | None = None,
    params: InstanceParams | None = None,
    **predict_kwargs,
) -> Generator[Progress, None, Segmentation]:
    """Predict, then post-process; yields :class:`Progress` and returns a :class:`Segmentation`.

    ``params=None`` uses the post-processing settings tuned for the model (its card's
    ``postprocess``; see :func:`napari_unet.instances.model_params`). Keyword arguments
    (``tile_size``, ``overlap``, ``batch_size``) go to :func:`napari_unet.predict.predict_iter`.
    """
    model = load_model() if model is None else model
    probs = yield from predict_iter(
        image, model, channel_axis=channel_axis, device=device, **predict_kwargs
    )
    yield Progress(0, 1, "instances")
    card = model_card(model)
    labels = instances_from_probabilities(probs, params or model_params(card), card.task)
    yield Progress(1, 1, "instances")
    return Segmentation(labels, probs)


def segment(image, model: UNet | None = None, **kwargs) -> np.ndarray:
    """Segment ``image`` into int32 instance labels of its spatial shape.

    Takes the arguments of :func:`segment_iter`. ``model=None`` uses the nuclei model
    shipped with the package.

    Examples
    --------
    >>> labels = segment(image)                        # 2D grayscale, any dtype
    >>> labels = segment(rgb)                          # (Y, X, 3)
    >>> labels = segment(stack, channel_axis=1)        # (Z, C, Y, X)
    """
    return run(segment_iter(image, model, **kwargs)).labels
