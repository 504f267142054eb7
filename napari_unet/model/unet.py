"""The U-Net, 2D or 3D: small blocks and a forward pass that reads top to bottom.

Self-contained (torch only): BioImage Model Zoo packages ship this file as the architecture.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Norm = Literal["batch", "group", "instance"] | None
Upsample = Literal["transpose", "bilinear"]
Pools = tuple[tuple[int, ...], ...]

_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
_CONV_T = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_POOL = {2: nn.MaxPool2d, 3: nn.MaxPool3d}
_BATCH = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_INSTANCE = {2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}
_LINEAR = {2: "bilinear", 3: "trilinear"}
# Fields added after the first model files, with the values those files mean. to_dict leaves
# them out at these values, so a 2D network's dict is what older versions read and write.
ADDED_FIELDS: dict[str, object] = {"spatial_dims": 2, "pools": None}


@dataclass(frozen=True)
class UNetConfig:
    """Everything needed to rebuild a :class:`UNet`."""

    in_channels: int = 1  # image channels (plus click channels for the interactive model)
    out_channels: int = 3  # background / interior / boundary for instance models
    base_channels: int = 32  # channels of the first level; doubles at each level down
    depth: int = 4  # number of poolings; inputs are padded to a multiple of 2**depth (per axis: see pools)
    norm: Norm = "batch"  # None reproduces the original article's network
    upsample: Upsample = "transpose"  # 2x2 transposed convolution, as in the article ("bilinear": trilinear in 3D)
    spatial_dims: int = 2  # 2: (Y, X) images; 3: (Z, Y, X) volumes with 3x3x3 convolutions
    # Pooling kernel of each level, one entry (1 or 2) per axis, (Z, Y, X) in 3D; None: 2 along
    # every axis at every level. plan_pools sets it from voxel spacing, as nnU-Net does: Z is not
    # pooled while its spacing is coarse. 3D only (a 2D network always pools 2x2).
    pools: Pools | None = None

    def __post_init__(self):
        if type(self.spatial_dims) is not int or self.spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims is {self.spatial_dims!r}; use 2 (images) or 3 (volumes)")
        pools = _as_pools(self.pools)
        if pools is not None:
            if len(pools) != self.depth or any(len(p) != self.spatial_dims for p in pools):
                axes = "(y, x)" if self.spatial_dims == 2 else "(z, y, x)"
                raise ValueError(f"pools must hold one {axes} kernel per level ({self.depth}), got {self.pools!r}")
            if all(k == 2 for p in pools for k in p):
                pools = None  # one spelling per network: None is "2 everywhere"
            elif self.spatial_dims == 2:
                raise ValueError("pools is for 3D networks (spatial_dims=3); a 2D network pools 2x2 at every level")
        object.__setattr__(self, "pools", pools)  # lists from JSON become tuples: hashable, comparable

    def level_pools(self) -> Pools:
        """The pooling kernel of every level, spelled out (2 where ``pools`` is None)."""
        return self.pools or ((2,) * self.spatial_dims,) * self.depth

    def to_dict(self) -> dict:
        """The config as plain data (for the model file's JSON header).

        Fields added since the first model files are left out at their old meaning, so a 2D
        network's dict stays the one every version of napari-unet reads.
        """
        return {k: v for k, v in asdict(self).items() if k not in ADDED_FIELDS or v != ADDED_FIELDS[k]}


def _as_pools(value: object) -> Pools | None:
    """``value`` (tuples, or lists from JSON) as a tuple of kernel tuples; ValueError if it is none."""
    if value is None:
        return None
    bad = ValueError(f"pools is {value!r}; it must be a list of per-level kernels such as [[1, 2, 2], [2, 2, 2]]")
    if not isinstance(value, (tuple, list)):
        raise bad
    if not all(isinstance(p, (tuple, list)) and all(type(k) is int and k in (1, 2) for k in p) for p in value):
        raise bad
    return tuple(tuple(p) for p in value)


def plan_pools(spacing: tuple[float, ...], depth: int) -> Pools:
    """Per-level pooling kernels for voxels of ``spacing`` (Z, Y, X), as nnU-Net plans them.

    At each level an axis is pooled (kernel 2) only while its current spacing is under twice
    the finest current spacing; pooling doubles an axis's spacing. Coarse Z is so left
    alone until the in-plane axes catch up, and deep features become near-isotropic in
    physical units. Spacing (5, 0.5, 0.5) with depth 4 gives (1, 2, 2) three times, then
    (2, 2, 2).

    Parameters
    ----------
    spacing
        Physical voxel size along each axis (any unit, the same for all).
    depth
        Number of poolings.

    Returns
    -------
    tuple of tuple of int
        One kernel per level, 1 or 2 per axis.
    """
    current = [float(s) for s in spacing]
    if not current or min(current) <= 0 or not all(math.isfinite(s) for s in current):
        raise ValueError(f"spacing must be positive sizes per axis, got {spacing!r}")
    pools = []
    for _ in range(depth):
        finest = min(current)
        # exactly twice the finest waits a level, as in nnU-Net: pooling both keeps the ratio at 2
        kernel = tuple(2 if s < 2 * finest * (1 - 1e-6) else 1 for s in current)
        current = [s * k for s, k in zip(current, kernel)]
        pools.append(kernel)
    return tuple(pools)


def _norm(kind: Norm, channels: int, dims: int = 2) -> nn.Module:
    if kind is None:
        return nn.Identity()
    if kind == "batch":
        return _BATCH[dims](channels)
    if kind == "group":
        return nn.GroupNorm(math.gcd(8, channels), channels)
    if kind == "instance":
        return _INSTANCE[dims](channels, affine=True)
    raise ValueError(f"unknown norm {kind!r}; use 'batch', 'group', 'instance' or None")


class TwoConv(nn.Sequential):
    """Two 3x3 (3x3x3) same-padded convolutions, each followed by normalisation and ReLU."""

    def __init__(self, cin: int, cout: int, norm: Norm, dims: int = 2):
        bias = norm is None
        conv = _CONV[dims]
        super().__init__(
            conv(cin, cout, 3, padding=1, bias=bias),
            _norm(norm, cout, dims),
            nn.ReLU(inplace=True),
            conv(cout, cout, 3, padding=1, bias=bias),
            _norm(norm, cout, dims),
            nn.ReLU(inplace=True),
        )


class Down(nn.Sequential):
    """Max-pooling by ``kernel`` (2x2 by default), then :class:`TwoConv`."""

    def __init__(self, cin: int, cout: int, norm: Norm, dims: int = 2, kernel: int | tuple[int, ...] = 2):
        super().__init__(_POOL[dims](kernel), TwoConv(cin, cout, norm, dims))


class UpCat(nn.Module):
    """Upsample by ``kernel``, concatenate the skip connection, then :class:`TwoConv`."""

    def __init__(
        self, cin: int, cout: int, norm: Norm, mode: Upsample, dims: int = 2, kernel: int | tuple[int, ...] = 2
    ):
        super().__init__()
        if mode == "transpose":
            self.up = _CONV_T[dims](cin, cout, kernel, stride=kernel)
        elif mode == "bilinear":
            factor = tuple(float(k) for k in kernel) if isinstance(kernel, tuple) else float(kernel)
            self.up = nn.Sequential(
                nn.Upsample(scale_factor=factor, mode=_LINEAR[dims], align_corners=False),
                _CONV[dims](cin, cout, 1),
            )
        else:
            raise ValueError(f"unknown upsample mode {mode!r}; use 'transpose' or 'bilinear'")
        self.conv = TwoConv(2 * cout, cout, norm, dims)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """Upsample ``x``, join it to ``skip`` and convolve."""
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class UNet(nn.Module):
    """U-Net (Ronneberger et al., 2015), 2D or 3D, that takes any spatial size.

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
        ``"transpose"`` (transposed convolution) or ``"bilinear"`` (bi- or trilinear + 1x1 convolution).
    spatial_dims
        2 for (batch, channels, height, width) images, 3 for (batch, channels, z, y, x) volumes.
    pools
        3D only: per-level pooling kernels, e.g. from :func:`plan_pools`; None pools 2 along every axis.

    Inputs whose spatial sizes are not multiples of :attr:`multiple` are reflect-padded
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
        spatial_dims: int = 2,
        pools: Pools | None = None,
    ):
        super().__init__()
        if min(in_channels, out_channels, base_channels, depth) < 1:
            raise ValueError("in_channels, out_channels, base_channels and depth must be >= 1")
        self.config = UNetConfig(
            in_channels, out_channels, base_channels, depth, norm, upsample, spatial_dims, pools
        )
        self.card = None  # a ModelCard once loaded from or saved to a file (see modelfile)
        dims = spatial_dims
        # 2D keeps the int kernel 2 of the first model files (same modules, same state dict)
        kernels = self.config.level_pools() if dims == 3 else (2,) * depth
        widths = [base_channels * 2**i for i in range(depth + 1)]
        self.inc = TwoConv(in_channels, widths[0], norm, dims)
        self.downs = nn.ModuleList(Down(widths[i], widths[i + 1], norm, dims, kernels[i]) for i in range(depth))
        self.ups = nn.ModuleList(
            UpCat(widths[i + 1], widths[i], norm, upsample, dims, kernels[i]) for i in reversed(range(depth))
        )
        self.head = _CONV[dims](widths[0], out_channels, 1)

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
            spatial_dims=config.spatial_dims,
            pools=config.pools,
        )

    @property
    def multiple(self) -> int | tuple[int, ...]:
        """Spatial sizes that need no internal padding are multiples of this.

        2D: one int (``2**depth``) for height and width. 3D: one per axis (Z, Y, X); an axis
        pooled at fewer levels has a smaller multiple.
        """
        if self.config.spatial_dims == 2:
            return 2**self.config.depth
        return tuple(math.prod(axis) for axis in zip(*self.config.level_pools()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (batch, out_channels, *spatial) for a (batch, in_channels, *spatial) input."""
        dims = self.config.spatial_dims
        if x.ndim != dims + 2 or x.shape[1] != self.config.in_channels:
            axes = "height, width" if dims == 2 else "z, y, x"
            raise ValueError(
                f"UNet expects a (batch, {self.config.in_channels}, {axes}) tensor, "
                f"got shape {tuple(x.shape)}"
            )
        size = x.shape[2:]
        x = pad_to_multiples(x, self.multiple)
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())
        return self.head(x)[(..., *(slice(0, s) for s in size))]


def pad_to_multiples(x: torch.Tensor, multiple: int | tuple[int, ...]) -> torch.Tensor:
    """``x`` (batch, C, *spatial) padded at the far end of each spatial axis to a multiple of
    ``multiple`` (one for all axes, or one per axis): mirrored, or repeated where an axis is
    shorter than its padding. Crop ``[..., :size]`` afterwards.
    """
    size = x.shape[2:]
    multiples = (multiple,) * len(size) if isinstance(multiple, int) else multiple
    pads = [-s % k for s, k in zip(size, multiples)]
    if not any(pads):
        return x
    mode = "reflect" if all(p < s for p, s in zip(pads, size)) else "replicate"
    return F.pad(x, [n for p in reversed(pads) for n in (0, p)], mode=mode)  # (before, after) from the last axis
