"""Tiled sliding-window prediction of per-class probabilities, on any device."""

from __future__ import annotations

import warnings
from collections.abc import Generator

import numpy as np
import torch

from napari_unet import checks
from napari_unet.devices import resolve_device
from napari_unet.inference.images import normalize, to_planes
from napari_unet.inference.tiling import blend_window, tile_slices
from napari_unet.inference.zoom import resample, zoomed_shape
from napari_unet.model.card import MAX_ZOOM, MIN_ZOOM
from napari_unet.model.files import image_channels, load_model, model_card
from napari_unet.model.unet import UNet
from napari_unet.progress import Progress, relay, run

VIEWS = 8  # test-time augmentation: the tile, mirrored and rotated (the dihedral group)


def predict_iter(
    image,
    model: UNet | None = None,
    *,
    channel_axis: int | None = None,
    device: str | torch.device | None = None,
    tile_size: int = 512,
    overlap: float = 0.25,
    batch_size: int | None = None,
    zoom: float = 1.0,
    keep_zoom: bool = False,
    tta: bool = False,
    normalized: bool = False,
) -> Generator[Progress, None, np.ndarray]:
    """Predict class probabilities tile by tile, yielding :class:`Progress` after each batch.

    Parameters
    ----------
    image
        2D (YX), 3D stack/time series (ZYX, TYX, planes predicted one by one), with an
        optional channel axis; any numeric dtype.
    model
        A :class:`UNet`; ``None`` loads the default nuclei model.
    channel_axis
        The channel axis, if any; a last axis of size 3/4 on a 3D array is taken as RGB.
    device
        ``None``/``"auto"``: CUDA, then MPS, then CPU.
    tile_size, overlap
        Square tile edge in pixels, and the fraction by which neighbouring tiles overlap.
    batch_size
        Tiles per forward pass; ``None`` picks 4 on GPUs and 1 on the CPU.
    zoom
        Magnification at which the network sees each plane (``2``: objects twice as
        wide, ``0.5``: half); the probabilities are brought back to the image's pixels.
        Networks separate very small objects better magnified and large ones better
        shrunk (see :func:`napari_unet.segment_iter`, which picks it from the objects it finds).
    keep_zoom
        Return the probabilities at the pixels the network saw (each plane
        :func:`zoomed_shape`), not brought back to the image's.
    tta
        Test-time augmentation: each tile is predicted in its 8 mirrored and rotated
        views and the probabilities are averaged (as nnU-Net's mirroring). Eight times
        the work, for slightly more accurate objects (:doc:`benchmarks`).

    normalized
        The image is already scaled as the model's card says (e.g. over a whole volume,
        :func:`~napari_unet.inference.images.normalize_stack`): its planes are not
        normalised one by one.

    Returns
    -------
    np.ndarray
        float32 probabilities shaped (n_classes, *spatial), spatial being the image's
        shape without its channel axis (its last two, Y and X, zoomed with ``keep_zoom``).
    """
    overlap = checks.number(overlap, "overlap", 0.0, 1.0, high_open=True)
    tile_size = checks.number(tile_size, "tile_size (pixels)", 16, integer=True)
    zoom = checks.number(zoom, "zoom", MIN_ZOOM, MAX_ZOOM)
    batch_size = None if batch_size is None else checks.number(batch_size, "batch_size", 1, integer=True)
    channel_axis = None if channel_axis is None else checks.number(channel_axis, "channel_axis", integer=True)
    model = checks.model_or_none(model)
    model = load_model() if model is None else model
    card = model_card(model)
    planes, spatial = to_planes(image, image_channels(model), channel_axis)
    dev = resolve_device(device)
    batch_size = batch_size or (4 if dev.type != "cpu" else 1)
    shape = tuple(planes.shape[-2:])
    seen = zoomed_shape(shape, zoom)
    tiles = tile_slices(seen, tile_size, overlap)
    back = seen if keep_zoom else shape
    # one plane is returned as it comes from the tiles: no second copy of the largest array
    out = None if len(planes) == 1 else np.empty((model.config.out_channels, len(planes), *back), np.float32)
    total = len(planes) * len(tiles)
    for p, plane in enumerate(planes):
        scaled = plane.astype(np.float32, copy=False) if normalized else normalize(plane, *card.normalization)
        x = resample(scaled, seen)
        job = _predict_plane(model, x, tile_size, overlap, batch_size, dev, VIEWS if tta else 1)
        first = p * len(tiles)
        probs = yield from relay(job, lambda done, first=first: Progress(first + done, total, "predict"))
        if out is None:
            out = resample(probs, back)[:, None]
        else:
            out[:, p] = resample(probs, back)
        del x, job, probs  # the next plane's input is made after this one's is freed
    return out.reshape(out.shape[0], *spatial[:-2], *back)


def predict(image, model: UNet | None = None, **kwargs) -> np.ndarray:
    """Run :func:`predict_iter` to the end and return the probabilities."""
    return run(predict_iter(image, model, **kwargs))


def _predict_plane(model, x, tile, overlap, batch, dev, views=1) -> Generator[int, None, np.ndarray]:
    """One normalised (C, Y, X) plane; on GPU out-of-memory, shrink the work and retry."""
    while True:
        try:
            return (yield from _tiled(model, x, tile, overlap, batch, dev, views))
        except torch.OutOfMemoryError:
            if dev.type == "cuda":
                torch.cuda.empty_cache()
            if batch > 1:
                batch //= 2
            elif tile > 128:
                tile //= 2
            elif dev.type != "cpu":
                warnings.warn(f"out of memory on {dev}; falling back to the CPU (slower)", stacklevel=2)
                dev = torch.device("cpu")
            else:
                raise


def view(x: torch.Tensor, k: int, inverse: bool = False) -> torch.Tensor:
    """The ``k``-th of the 8 mirrored/rotated views of (..., Y, X) ``x`` (0: itself), or,
    with ``inverse``, what undoes it: bit 4 transposes Y and X, bit 1 flips X, bit 2 flips Y.
    """
    if k & 4 and not inverse:
        x = x.transpose(-1, -2)
    dims = [d for bit, d in ((1, -1), (2, -2)) if k & bit]
    if dims:
        x = x.flip(dims)
    if k & 4 and inverse:
        x = x.transpose(-1, -2)
    return x


def ready(model: torch.nn.Module, dev: torch.device) -> torch.nn.Module:
    """``model`` on ``dev``, channels_last, in eval mode. Checking costs far less than
    ``.to().eval()``, which walks every module and tensor even when nothing moves: a click's
    small windows would pay that walk on every pass.
    """
    tensors = [*model.parameters(), *model.buffers()]
    placed = all(t.device == dev and (t.dim() != 4 or t.is_contiguous(memory_format=torch.channels_last))
                 for t in tensors)
    if not placed:
        model = model.to(dev, memory_format=torch.channels_last)
    if any(m.training for m in model.modules()):
        model = model.eval()
    return model


def _probabilities(model, xb: torch.Tensor, views: int) -> torch.Tensor:
    """Softmax of the model on a batch, averaged over its first ``views`` views."""
    total = None
    for k in range(views):
        xk = view(xb, k).contiguous(memory_format=torch.channels_last)
        p = view(torch.softmax(model(xk).float(), dim=1), k, inverse=True)
        total = p if total is None else total.add_(p)
    return total.div_(views)


def _tiled(model, x, tile, overlap, batch, dev, views=1) -> Generator[int, None, np.ndarray]:
    slices = tile_slices(x.shape[-2:], tile, overlap)
    acc = np.zeros((model.config.out_channels, *x.shape[-2:]), np.float32)
    weight = np.zeros(x.shape[-2:], np.float32)
    window = blend_window(*x[(0, *slices[0])].shape)
    window_t = torch.tensor(window, device=dev)  # a copy: the cached window is read-only
    model = ready(model, dev)
    use_amp = dev.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    for start in range(0, len(slices), batch):
        group = slices[start : start + batch]
        xb = torch.from_numpy(np.stack([x[(slice(None), *s)] for s in group]))
        xb = xb.to(dev, non_blocking=True).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast(dev.type, dtype=amp_dtype, enabled=use_amp):
            probs = _probabilities(model, xb, views).mul_(window_t).cpu().numpy()
        for s, p in zip(group, probs):
            acc[(slice(None), *s)] += p
            weight[s] += window
        yield start + len(group)
    acc /= weight
    return acc
