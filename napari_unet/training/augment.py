"""Joint augmentation of an image and its instance labels with torchvision.transforms.v2.

The image travels as a :class:`tv_tensors.Image` and the labels plus the annotated
mask as one two-channel :class:`tv_tensors.Mask`, so every geometric transform moves
them together and masks are resampled with nearest neighbour. Pixels that a
transform brings in from outside the window get label 0 *and* annotated 0: they are
ignored by the loss rather than taught as background. Randomness comes from torch's
global generator (geometry) and a numpy ``Generator`` (windows); seed both for
reproducible runs.

torchvision is imported on first use, not with this module: it takes seconds, which every
process that imports napari_unet (dask workers, torchrun ranks, the CLI) would pay.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from napari_unet import _gl_guard

if TYPE_CHECKING:
    from torchvision.transforms import v2


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random transforms; set a probability to 0 to switch one off."""

    scale: tuple[float, float] = (0.7, 1.4)  # zoom, log-uniform (the generator already varies sizes)
    # magnify windows of images whose objects are small by the zoom automatic zoom gives
    # them (napari_unet.inference.segment.auto_zoom), before the jitter above: the network then learns
    # small objects as it is shown them, magnified (shrinking would need larger images)
    object_zoom: bool = False
    flips: bool = True  # horizontal and vertical flips (microscopy has no up or left)
    rotate90: bool = True  # random multiples of 90° (exact, no interpolation)
    affine_p: float = 0.3  # probability of a small rotation + shear
    degrees: float = 20.0  # rotation range of the affine jitter (±)
    shear: float = 8.0  # shear range of the affine jitter (±, degrees)
    elastic_p: float = 0.15  # elastic jitter: costly (~25 ms per 256² patch), so used sparingly
    elastic_alpha: float = 15.0  # displacement magnitude, pixels
    elastic_sigma: float = 4.0  # smoothness of the displacement field, pixels
    gamma: tuple[float, float] = (0.6, 1.7)  # gamma on the normalised image, log-uniform
    contrast: tuple[float, float] = (0.7, 1.3)  # multiplicative gain
    brightness: float = 0.1  # additive offset range (±), in normalised units
    blur_p: float = 0.15  # probability of an extra Gaussian blur (focus variation)
    blur_sigma: tuple[float, float] = (0.3, 1.5)  # its sigma range, pixels
    noise: tuple[float, float] = (0.0, 0.06)  # Gaussian noise sigma range, normalised units


@cache
def _torchvision():
    """Import torchvision's ``tv_tensors`` and ``transforms.v2`` (once, on first use)."""
    _gl_guard.block_triton()  # napari may have drawn its canvas since napari_unet was imported
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    return tv_tensors, v2


class _JointTransform:
    """A random transform called the way v2.Compose calls torchvision's: parameters drawn once
    per call, then applied to each input of the ``transformed`` tv_tensors types (others pass
    through). Plain Python, so that defining it needs no torchvision.
    """

    transformed: tuple[str, ...] = ()  # names of the tv_tensors classes it changes

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        raise NotImplementedError

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        raise NotImplementedError

    def __call__(self, *inputs: Any) -> Any:
        tv_tensors, _ = _torchvision()
        types = tuple(getattr(tv_tensors, name) for name in self.transformed)
        changed = [inpt for inpt in inputs if isinstance(inpt, types)]
        params = self.make_params(changed)
        out = tuple(self.transform(inpt, params) if isinstance(inpt, types) else inpt for inpt in inputs)
        return out if len(out) > 1 else out[0]


class RandomRot90(_JointTransform):
    """Rotate by a random multiple of 90° (image and masks alike)."""

    transformed = ("Image", "Mask")

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        """Draw the number of quarter turns."""
        return {"k": int(torch.randint(0, 4, ()).item())}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        """Rotate an image or mask by the drawn quarter turns."""
        if params["k"] == 0:
            return inpt
        tv_tensors, _ = _torchvision()
        return tv_tensors.wrap(torch.rot90(inpt, params["k"], dims=(-2, -1)), like=inpt)


class IntensityJitter(_JointTransform):
    """Gamma, gain, offset and Gaussian noise on the image only; no clipping.

    The normalised image may exceed [0, 1] (saturated objects, dark offsets), so
    torchvision's colour transforms, which clip float images to [0, 1], do not fit.
    """

    transformed = ("Image",)

    def __init__(self, config: AugmentConfig):
        self.config = config

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        """Draw gamma, gain, offset and noise level."""
        c = self.config

        def uniform(lo: float, hi: float) -> float:
            return float(lo + (hi - lo) * torch.rand(()))

        log_gamma = uniform(np.log(c.gamma[0]), np.log(c.gamma[1]))
        return {
            "gamma": float(np.exp(log_gamma)),
            "gain": uniform(*c.contrast),
            "offset": uniform(-c.brightness, c.brightness),
            "noise": uniform(*c.noise),
        }

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        """Apply the drawn intensity changes to an image."""
        x = inpt.as_subclass(torch.Tensor)
        x = torch.sign(x) * x.abs().pow(params["gamma"])
        x = x * params["gain"] + params["offset"]
        if params["noise"] > 0:
            x = x + params["noise"] * torch.randn_like(x)
        tv_tensors, _ = _torchvision()
        return tv_tensors.wrap(x, like=inpt)


def build_transform(config: AugmentConfig, patch_size: int) -> v2.Compose:
    """The v2 pipeline applied to a cropped window: resize to the patch, then jitter."""
    _, v2 = _torchvision()
    steps: list[Any] = [v2.Resize((patch_size, patch_size), antialias=True)]
    if config.flips:
        steps += [v2.RandomHorizontalFlip(), v2.RandomVerticalFlip()]
    if config.rotate90:
        steps.append(RandomRot90())
    if config.affine_p > 0:
        affine = v2.RandomAffine(degrees=config.degrees, shear=config.shear)
        steps.append(v2.RandomApply([affine], p=config.affine_p))
    if config.elastic_p > 0:
        elastic = v2.ElasticTransform(alpha=config.elastic_alpha, sigma=config.elastic_sigma)
        steps.append(v2.RandomApply([elastic], p=config.elastic_p))
    if config.blur_p > 0:
        blur = v2.GaussianBlur(kernel_size=7, sigma=config.blur_sigma)
        steps.append(v2.RandomApply([blur], p=config.blur_p))
    steps.append(IntensityJitter(config))
    return v2.Compose(steps)


def random_window(
    shape: tuple[int, int],
    size: int,
    rng: np.random.Generator,
    center: tuple[int, int] | None = None,
) -> tuple[int, int]:
    """Top-left corner of a ``size``² window in an image of ``shape``.

    The window may stick out of a small image (it is padded later). With ``center``
    it is placed around that pixel, otherwise anywhere that keeps it inside.
    """
    corner = []
    for dim, extent in enumerate(shape):
        if center is not None:
            start = center[dim] - size // 2
        elif extent > size:
            start = int(rng.integers(0, extent - size + 1))
        else:
            start = int(rng.integers(extent - size, 1))  # small image: place it anywhere inside
        corner.append(start)
    return corner[0], corner[1]


def augment(
    image: np.ndarray,
    labels: np.ndarray,
    annotated: np.ndarray,
    transform: v2.Compose,
) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Apply ``transform`` jointly to a (C, H, W) image window and its masks.

    Returns the image as a float32 tensor and labels (int32) and annotated (bool) as
    numpy arrays, ready for :func:`napari_unet.training.targets.make_targets`.
    """
    tv_tensors, _ = _torchvision()
    img = tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)))
    masks = np.stack([labels.astype(np.int32, copy=False), annotated.astype(np.int32)])
    out_img, out_masks = transform(img, tv_tensors.Mask(torch.from_numpy(masks)))
    out_masks = out_masks.numpy()
    return out_img.as_subclass(torch.Tensor), out_masks[0], out_masks[1] > 0
