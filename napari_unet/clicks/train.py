"""Training the click network with simulated clicks, through the ordinary training engine.

:class:`~napari_unet.clicks.batches.ClickSampler` is a batch source for :func:`napari_unet.training.engine.train_iter`
(its ``batches`` hook): each sample is a window around one object, augmented like the
automatic model's patches, with clicks placed the way :mod:`napari_unet.clicks.protocol`'s
simulated user places them — the first inside the object, some extra random ones, and
for part of the batch a previous mask with a click on its largest error: the network
being trained answers earlier clicks (iterative training, as in RITM), or the true
mask is perturbed (grown, shrunk, shifted, cut), which is cheaper. The target is the
object (class 1) against everything else; unannotated pixels are ignored, so
fine-tuning can use partially labelled images.

``napari-unet train --task click --synthetic -o model.safetensors`` trains one from
scratch on generated nuclei (``scripts/train_shipped_models.sh`` has the shipped model's recipe).
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import replace

from napari_unet.clicks.batches import ClickSampler, ClickSimConfig
from napari_unet.clicks.segmenter import ClickConfig
from napari_unet.model.card import ModelCard
from napari_unet.model.unet import UNet
from napari_unet.training.engine import TrainConfig, TrainProgress, TrainResult, train_iter
from napari_unet.training.losses import LossConfig
from napari_unet.training.sources import Source


def click_train_config(**overrides) -> TrainConfig:
    """Training settings for a click network (crop-sized patches, Dice on the object class)."""
    base = TrainConfig(patch_size=ClickConfig().crop, batch_size=8, val_every=100,
                       loss=LossConfig(dice_classes=(1,)))
    return replace(base, **overrides)


def new_click_model(base_channels: int = 16, depth: int = 4, image_channels: int = 1) -> UNet:
    """An untrained click network (inputs: image, positive, negative, previous mask)."""
    model = UNet(image_channels + 3, 2, base_channels=base_channels, depth=depth)
    model.card = ModelCard(
        name="nuclei-click", task="click", classes=("background", "object"),
        channels=("intensity",) if image_channels == 1 else tuple(f"channel {i}" for i in range(image_channels)),
        click_channels=3,
    )
    return model


def click_batches(model: UNet, sim: ClickSimConfig = ClickSimConfig(), clicks: ClickConfig = ClickConfig()):
    """The ``batches`` factory that makes :func:`train_iter` train ``model`` as a click network."""
    return lambda data, config, rng: ClickSampler(data, model, config, rng, sim, clicks)


def train_click_iter(model: UNet, data: Source, config: TrainConfig | None = None, *, device=None,
                     stop: threading.Event | None = None, sim: ClickSimConfig = ClickSimConfig(),
                     ) -> Generator[TrainProgress, None, TrainResult]:
    """Train (or fine-tune) a click network with simulated clicks; yields progress like ``train_iter``."""
    config = config if config is not None else click_train_config()
    return (yield from train_iter(model, data, config, device=device, stop=stop,
                                  batches=click_batches(model, sim)))


def widened(old: UNet) -> UNet:
    """A 2-click-channel model as a 3-channel one whose previous-mask input starts at zero weight."""
    if old.card is None or old.card.click_channels != 2:
        return old
    model = new_click_model(old.config.base_channels, old.config.depth, old.config.in_channels - 2)
    state = old.state_dict()
    first = model.inc[0].weight.detach().clone()
    first.zero_()
    first[:, : old.config.in_channels] = state["inc.0.weight"]
    state["inc.0.weight"] = first
    model.load_state_dict(state)
    return model
