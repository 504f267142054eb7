"""Tiny networks with hand-set weights, so tests need no trained model."""

from __future__ import annotations

import numpy as np
import torch

from napari_unet.model.card import ModelCard
from napari_unet.model.unet import UNet


def blank_unet(in_channels: int, out_channels: int) -> UNet:
    """``UNet(in, out, base_channels=4, depth=2)`` with every weight 0 and BatchNorm an
    identity: the starting point of the hand-set networks."""
    model = UNet(in_channels, out_channels, base_channels=4, depth=2)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.fill_(1.0)
    return model


def threshold_click_unet(gain: float = 20.0, veto: float = 40.0) -> UNet:
    """``UNet(3, 2, base_channels=4, depth=2)`` that answers clicks like a threshold.

    Object log-odds = ``gain`` × (normalised intensity − 0.5) − ``veto`` × negative-click
    channel: every bright pixel is "object" except a hole of ~5 px around each negative
    click. Positive clicks only choose which bright blob is kept (the segmenter keeps
    the connected parts under positive clicks).
    """
    model = blank_unet(4, 2)
    with torch.no_grad():
        last = model.ups[-1].conv
        model.inc[0].weight[0, 0, 1, 1] = 1.0  # intensity -> feature 0
        model.inc[0].weight[1, 2, 1, 1] = 1.0  # negative clicks -> feature 1
        for conv in (model.inc[3], last[0], last[3]):
            conv.weight[0, 0, 1, 1] = 1.0
            conv.weight[1, 1, 1, 1] = 1.0
        model.head.weight[1, 0, 0, 0] = gain
        model.head.weight[1, 1, 0, 0] = -veto
        model.head.bias[1] = -gain / 2
    model.card = ModelCard(name="threshold-click", task="click", classes=("background", "object"),
                           click_channels=3)
    return model.eval()


def disk_image(shape=(96, 128), centres=((30, 30), (30, 80), (70, 50)), radius=10) -> np.ndarray:
    """Bright disks on a dark background (float32)."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    image = np.full(shape, 10.0, np.float32)
    for cy, cx in centres:
        image[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = 110.0
    return image


def touching_pair() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two touching nuclei of one brightness, 12 px apart, that the shipped nuclei model takes
    as one object: (image, the left nucleus, the right one), split down the middle.
    """
    from scipy import ndimage as ndi

    yy, xx = np.mgrid[:96, :96]
    discs = [(yy - 48) ** 2 + (xx - cx) ** 2 <= 100 for cx in (42, 54)]
    left, right = discs[0] & (xx < 48), discs[1] & (xx >= 48)
    image = ndi.gaussian_filter((left | right) * 100.0, 1.5) + np.random.default_rng(0).normal(10, 3, xx.shape)
    return image.astype(np.float32), left, right
