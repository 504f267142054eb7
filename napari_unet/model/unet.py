"""The U-Net: small blocks and a forward pass that reads top to bottom."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Norm = Literal["batch", "group", "instance"] | None
Upsample = Literal["transpose", "bilinear"]


@dataclass(frozen=True)
class UNetConfig:
    """Everything needed to rebuild a :class:`UNet`."""

    in_channels: int = 1  # image channels (plus click channels for the interactive model)
    out_channels: int = 3  # background / interior / boundary for instance models
    base_channels: int = 32  # channels of the first level; doubles at each level down
    depth: int = 4  # number of 2x2 poolings; inputs are padded to a multiple of 2**depth
    norm: Norm = "batch"  # None reproduces the original article's network
    upsample: Upsample = "transpose"  # 2x2 transposed convolution, as in the article

    def to_dict(self) -> dict:
        """The config as plain data (for the model file's JSON header)."""
        return asdict(self)


def _norm(kind: Norm, channels: int) -> nn.Module:
    if kind is None:
        return nn.Identity()
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(math.gcd(8, channels), channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    raise ValueError(f"unknown norm {kind!r}; use 'batch', 'group', 'instance' or None")


class TwoConv(nn.Sequential):
    """Two 3x3 same-padded convolutions, each followed by normalisation and ReLU."""

    def __init__(self, cin: int, cout: int, norm: Norm):
        bias = norm is None
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=bias),
            _norm(norm, cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=bias),
            _norm(norm, cout),
            nn.ReLU(inplace=True),
        )


class Down(nn.Sequential):
    """2x2 max-pooling, then :class:`TwoConv`."""

    def __init__(self, cin: int, cout: int, norm: Norm):
        super().__init__(nn.MaxPool2d(2), TwoConv(cin, cout, norm))


class UpCat(nn.Module):
    """Upsample by 2, concatenate the skip connection, then :class:`TwoConv`."""

    def __init__(self, cin: int, cout: int, norm: Norm, mode: Upsample):
        super().__init__()
        if mode == "transpose":
            self.up = nn.ConvTranspose2d(cin, cout, 2, stride=2)
        elif mode == "bilinear":
            self.up = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(cin, cout, 1),
            )
        else:
            raise ValueError(f"unknown upsample mode {mode!r}; use 'transpose' or 'bilinear'")
        self.conv = TwoConv(2 * cout, cout, norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """Upsample ``x``, join it to ``skip`` and convolve."""
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class UNet(nn.Module):
    """2D U-Net (Ronneberger et al., 2015) that takes any height and width.

    Parameters
    ----------
    in_channels
        Channels of the input image.
    out_channels
        Classes predicted per pixel (logits).
    base_channels
        Channels after the first block; doubled at each level down.
    depth
        Number of down-sampling steps.
    norm
        ``"batch"``, ``"group"``, ``"instance"`` or ``None`` (the original network).
    upsample
        ``"transpose"`` (2x2 transposed convolution) or ``"bilinear"`` (+ 1x1 convolution).

    Inputs whose height or width is not a multiple of ``2**depth`` are reflect-padded
    internally and the output is cropped back, so the output always has the input's
    spatial shape. ``UNet(3, 2, base_channels=64, depth=4, norm=None)`` is the
    original article's network (31,031,810 parameters).
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 3,
        *,
        base_channels: int = 32,
        depth: int = 4,
        norm: Norm = "batch",
        upsample: Upsample = "transpose",
    ):
        super().__init__()
        if min(in_channels, out_channels, base_channels, depth) < 1:
            raise ValueError("in_channels, out_channels, base_channels and depth must be >= 1")
        self.config = UNetConfig(in_channels, out_channels, base_channels, depth, norm, upsample)
        self.card = None  # a ModelCard once loaded from or saved to a file (see modelfile)
        widths = [base_channels * 2**i for i in range(depth + 1)]
        self.inc = TwoConv(in_channels, widths[0], norm)
        self.downs = nn.ModuleList(Down(widths[i], widths[i + 1], norm) for i in range(depth))
        self.ups = nn.ModuleList(
            UpCat(widths[i + 1], widths[i], norm, upsample) for i in reversed(range(depth))
        )
        self.head = nn.Conv2d(widths[0], out_channels, 1)

    @classmethod
    def from_config(cls, config: UNetConfig) -> UNet:
        """A new, untrained network of this config."""
        return cls(
            config.in_channels,
            config.out_channels,
            base_channels=config.base_channels,
            depth=config.depth,
            norm=config.norm,
            upsample=config.upsample,
        )

    @property
    def multiple(self) -> int:
        """Spatial sizes that need no internal padding are multiples of this."""
        return 2**self.config.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (batch, out_channels, height, width) for a (batch, in_channels, height, width) input."""
        if x.ndim != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(
                f"UNet expects a (batch, {self.config.in_channels}, height, width) tensor, "
                f"got shape {tuple(x.shape)}"
            )
        h, w = x.shape[-2:]
        m = self.multiple
        pad_h, pad_w = -h % m, -w % m
        if pad_h or pad_w:
            mode = "reflect" if pad_h < h and pad_w < w else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())
        return self.head(x)[..., :h, :w]
