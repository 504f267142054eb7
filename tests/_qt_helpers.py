"""Helpers for the viewer tests: a tiny model that behaves predictably, images, waiting."""

from __future__ import annotations

import numpy as np
import torch
from _click_models import blank_unet

from napari_unet.model.unet import UNet

WAIT_MS = 60_000  # generous: two shared CPU cores


def threshold_unet() -> UNet:
    """A tiny ``UNet(1, 3, base_channels=4, depth=2)`` whose weights make it a threshold.

    Normalised intensity passes straight through the first and last blocks (centre taps
    of 1, everything else 0) and the head turns it into "interior" above 0.5 and
    "background" below, so bright disks come out as objects: the viewer tests can
    assert on objects without training anything.
    """
    model = blank_unet(1, 3)
    with torch.no_grad():
        last = model.ups[-1].conv
        for conv in (model.inc[0], model.inc[3], last[0], last[3]):
            conv.weight[0, 0, 1, 1] = 1.0
        k = 20.0
        model.head.weight[:, 0, 0, 0] = torch.tensor([-k, k, 0.0])
        model.head.bias[:] = torch.tensor([k / 2, -k / 2, -k])
    return model.eval()


def disks(shape=(96, 128), n=6, radius=7, dtype=np.float32, seed=0) -> np.ndarray:
    """Bright disks on a dark, slightly noisy background."""
    rng = np.random.default_rng(seed)
    h, w = shape[-2:]
    yy, xx = np.mgrid[:h, :w]
    image = rng.normal(10, 2, (h, w))
    for i in range(n):  # on a grid, so they never touch
        cy = radius + 2 + (i // 3) * (3 * radius)
        cx = radius + 2 + (i % 3) * (3 * radius)
        image[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] += 100
    if np.issubdtype(dtype, np.integer):
        image = image * (np.iinfo(dtype).max / 255.0)
    return image.astype(dtype)


def disk_labels(image: np.ndarray) -> np.ndarray:
    """The disks of :func:`disks` as instance labels (what a user would have corrected)."""
    from scipy import ndimage as ndi

    return ndi.label(image > 60)[0].astype(np.int32)


def run_segment(qtbot, widget) -> None:
    """Press Segment and wait until the worker has finished (result written)."""
    widget.run_button.click()
    assert widget.running, widget.status.text()
    qtbot.waitUntil(lambda: not widget.running, timeout=WAIT_MS)
