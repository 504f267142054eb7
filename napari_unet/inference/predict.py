"""Tiled sliding-window prediction of per-class probabilities, on any device."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Generator

import numpy as np
import torch
from torch.nn.utils.fusion import fuse_conv_bn_eval

from napari_unet import checks
from napari_unet.devices import resolve_device
from napari_unet.inference.images import normalize, to_planes, to_volumes
from napari_unet.inference.intensity import scale_plane
from napari_unet.inference.tiling import blend_window, tile_slices
from napari_unet.inference.zoom import resample, zoomed_shape
from napari_unet.model.card import MAX_ZOOM, MIN_ZOOM
from napari_unet.model.files import image_channels, load_model, model_card
from napari_unet.model.memo import PerWeights
from napari_unet.model.unet import TwoConv, UNet
from napari_unet.progress import Progress, relay, run

VIEWS = 8  # test-time augmentation: the tile, mirrored and rotated (the dihedral group)
TILE_2D = 512  # default tile edge of a 2D network (pixels)
TILE_3D = (64, 128, 128)  # default (Z, Y, X) tile of a 3D network: ~1 M voxels, a few GB of activations at width 32
MAX_TILE_Z = 64  # a 3D network given one edge (tile_size=N) takes at most this many planes per tile


def predict_iter(
    image,
    model: UNet | None = None,
    *,
    channel_axis: int | None = None,
    device: str | torch.device | None = None,
    tile_size: int | tuple[int, ...] | None = None,
    overlap: float = 0.25,
    batch_size: int | None = None,
    zoom: float = 1.0,
    keep_zoom: bool = False,
    tta: bool = False,
    normalized: bool = False,
    ranges: np.ndarray | None = None,
    dtype: type = np.float32,
) -> Generator[Progress, None, np.ndarray]:
    """Predict class probabilities tile by tile, yielding :class:`Progress` after each batch.

    Parameters
    ----------
    image
        2D (YX), 3D stack/time series (ZYX, TYX, planes predicted one by one), with an
        optional channel axis; any numeric dtype. A 3D network (``spatial_dims=3``) takes
        a volume (ZYX) or a series of them (TZYX) and predicts each volume in 3D tiles.
    model
        A :class:`UNet`; ``None`` loads the default nuclei model.
    channel_axis
        The channel axis, if any; a last axis of size 3/4 on a 3D array is taken as RGB.
    device
        ``None``/``"auto"``: CUDA, then MPS, then CPU.
    tile_size, overlap
        Tile edge in pixels (one for every axis, or one per axis), and the fraction by which
        neighbouring tiles overlap. ``None``: 512 for 2D networks, (64, 128, 128) for 3D
        ones; a single edge given to a 3D network is capped at 64 planes along Z.
    batch_size
        Tiles per forward pass; ``None`` picks 4 on GPUs and 1 on the CPU.
    zoom
        Magnification at which the network sees each plane, in Y and X (``2``: objects twice as
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
    ranges
        Instead of an image already scaled: (planes, C, 2) intensities mapped to 0 and 1,
        per plane of the image (after its channel axis is taken out) and channel
        (:func:`~napari_unet.inference.intensity.stack_range`, one per volume). Each plane is
        scaled as the network takes it: no float copy of a whole volume.
    dtype
        ``np.float32``, or ``np.uint8`` for probabilities stored as 0-255 (a quarter of the
        memory; see :func:`quantize`), made plane by plane.

    Returns
    -------
    np.ndarray
        Probabilities of ``dtype`` shaped (n_classes, *spatial), spatial being the image's
        shape without its channel axis (its last two, Y and X, zoomed with ``keep_zoom``).
    """
    if np.dtype(dtype) not in (np.float32, np.uint8):
        raise ValueError(f"probabilities are stored as float32 or uint8 (0-255), not {np.dtype(dtype)}")
    overlap = checks.number(overlap, "overlap", 0.0, 1.0, high_open=True)
    zoom = checks.number(zoom, "zoom", MIN_ZOOM, MAX_ZOOM)
    batch_size = None if batch_size is None else checks.number(batch_size, "batch_size", 1, integer=True)
    channel_axis = None if channel_axis is None else checks.number(channel_axis, "channel_axis", integer=True)
    model = checks.model_or_none(model)
    model = load_model() if model is None else model
    dims = getattr(model.config, "spatial_dims", 2)
    tile = _tile_shape(tile_size, dims)
    card = model_card(model)
    to_blocks = to_volumes if dims == 3 else to_planes
    blocks, spatial = to_blocks(image, image_channels(model), channel_axis)
    dev = resolve_device(device)
    batch_size = batch_size or (4 if dev.type != "cpu" and dims == 2 else 1)
    shape = tuple(blocks.shape[2:])
    seen = (*shape[:-2], *zoomed_shape(shape[-2:], zoom))
    tiles = tile_slices(seen, tile, overlap)
    back = seen if keep_zoom else shape
    # one float32 block is returned as it comes from the tiles: no second copy of the largest array
    whole = len(blocks) == 1 and np.dtype(dtype) == np.float32
    out = None if whole else np.empty((model.config.out_channels, len(blocks), *back), dtype)
    total = len(blocks) * len(tiles)
    depth = shape[0] if dims == 3 else 1  # planes per block
    for b, block in enumerate(blocks):
        if ranges is not None:
            scaled = _scaled(block, ranges[b * depth : (b + 1) * depth], dims)
        elif normalized:
            scaled = block.astype(np.float32, copy=False)
        else:
            scaled = _normalized(block, card.normalization)
        x = resample(scaled, seen)
        del scaled
        job = _predict_block(model, x, tile, overlap, batch_size, dev, VIEWS if tta else 1)
        first = b * len(tiles)
        probs = yield from relay(job, lambda done, first=first: Progress(first + done, total, "predict"))
        if out is None:
            out = resample(probs, back)[:, None]
        elif np.dtype(dtype) == np.uint8:
            quantize(resample(probs, back), out=out[:, b])
        else:
            out[:, b] = resample(probs, back)
        del x, job, probs  # the next block's input is made after this one's is freed
    return out.reshape(out.shape[0], *spatial[: -len(back)], *back)


def _tile_shape(tile_size, dims: int) -> tuple[int, ...]:
    """The tile's edge along each spatial axis of a ``dims``-D network."""
    if tile_size is None:
        return (TILE_2D,) * 2 if dims == 2 else TILE_3D
    if isinstance(tile_size, (tuple, list)):
        if len(tile_size) != dims:
            raise ValueError(f"tile_size {tuple(tile_size)} has {len(tile_size)} edges; this {dims}D network "
                             f"needs {dims} (one per axis) or a single edge")
        return tuple(checks.number(t, "tile_size (pixels)", 16, integer=True) for t in tile_size)
    edge = checks.number(tile_size, "tile_size (pixels)", 16, integer=True)
    return (edge, edge) if dims == 2 else (min(edge, MAX_TILE_Z), edge, edge)


def _normalized(block: np.ndarray, percentiles: tuple[float, float]) -> np.ndarray:
    """A (C, Y, X) plane, or a (C, Z, Y, X) volume with one scale for all its planes."""
    if block.ndim == 3:
        return normalize(block, *percentiles)
    flat = block.reshape(block.shape[0], -1, block.shape[-1])  # (C, Z * Y, X)
    return normalize(flat, *percentiles).reshape(block.shape)


def _scaled(block: np.ndarray, ranges: np.ndarray, dims: int) -> np.ndarray:
    """A (C, Y, X) plane, or a (C, Z, Y, X) volume plane by plane, scaled by its (planes, C, 2) ``ranges``."""
    if dims == 2:
        return scale_plane(block, ranges[0])
    out = np.empty(block.shape, np.float32)
    for z in range(block.shape[1]):
        out[:, z] = scale_plane(block[:, z], ranges[z])
    return out


QUANTUM = 255  # uint8 probabilities: 0-255 for 0-1


def quantize(probabilities: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """0-1 probabilities as uint8 0-255 (rounded: within 1/510 of the float; a threshold of
    0.5 splits them exactly as the float ones), into ``out`` when given.
    """
    scaled = np.multiply(probabilities, QUANTUM, dtype=np.float32)
    scaled += 0.5
    np.clip(scaled, 0, QUANTUM, out=scaled)
    if out is None:
        return scaled.astype(np.uint8)
    out[...] = scaled  # truncates: scaled + 0.5 rounds
    return out


def as_float(probabilities: np.ndarray) -> np.ndarray:
    """Probabilities as float32 0-1, whether stored as float or as uint8 (:func:`quantize`)."""
    probs = np.asarray(probabilities)
    if probs.dtype == np.uint8:
        return probs.astype(np.float32) / np.float32(QUANTUM)
    return probs


def predict(image, model: UNet | None = None, **kwargs) -> np.ndarray:
    """Run :func:`predict_iter` to the end and return the probabilities."""
    return run(predict_iter(image, model, **kwargs))


def _predict_block(model, x, tile, overlap, batch, dev, views=1) -> Generator[int, None, np.ndarray]:
    """One normalised (C, [Z,] Y, X) block; on GPU out-of-memory, shrink the work and retry:
    the batch first, then the tile's longest edge (down to 128 in Y/X, 16 in Z), then the CPU.
    """
    while True:
        try:
            return (yield from _tiled(model, x, tile, overlap, batch, dev, views))
        except torch.OutOfMemoryError:
            if dev.type == "cuda":
                torch.cuda.empty_cache()
            smaller = _halved(tile)
            if batch > 1:
                batch //= 2
            elif smaller != tile:
                tile = smaller
            elif dev.type != "cpu":
                warnings.warn(f"out of memory on {dev}; falling back to the CPU (slower)", stacklevel=2)
                dev = torch.device("cpu")
            else:
                raise


def _halved(tile: tuple[int, ...]) -> tuple[int, ...]:
    """``tile`` with its longest edge halved, or itself when every edge is at its floor."""
    floors = (16, 128, 128)[-len(tile):] if len(tile) == 3 else (128, 128)
    room = [t / f for t, f in zip(tile, floors)]
    axis = int(np.argmax(room))
    if room[axis] <= 1:
        return tile
    return tuple(max(f, t // 2) if i == axis else t for i, (t, f) in enumerate(zip(tile, floors)))


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


def memory_format(ndim: int) -> torch.memory_format:
    """Channels-last for 2D networks' 4D tensors (faster convolutions on CPU and GPU); plain
    contiguous for 3D ones' 5D tensors (channels_last_3d is slower for 3x3x3 convolutions on CPU).
    """
    return torch.channels_last if ndim == 4 else torch.contiguous_format


def ready(model: torch.nn.Module, dev: torch.device) -> torch.nn.Module:
    """``model`` on ``dev``, channels_last (2D networks), in eval mode. Checking costs far less
    than ``.to().eval()``, which walks every module and tensor even when nothing moves: a
    click's small windows would pay that walk on every pass.
    """
    tensors = [*model.parameters(), *model.buffers()]
    placed = all(t.device == dev and (t.dim() != 4 or t.is_contiguous(memory_format=torch.channels_last))
                 for t in tensors)
    if not placed:
        fmt = memory_format(4 if getattr(model.config, "spatial_dims", 2) == 2 else 5)
        model = model.to(dev, memory_format=fmt)
    if any(m.training for m in model.modules()):
        model = model.eval()
    return model


def folded(model: UNet) -> UNet:
    """The network with each batch norm folded into the convolution before it, for inference.

    In eval mode a batch norm is a per-channel scale and shift, which the convolution's
    weights and bias can carry: the same function (to ~1e-7) in one pass over the voxels
    instead of two, ~10% of a 3D network's time on the CPU and ~15% of the click network's
    at 64². The copy is kept while the weights stay as they are (a fine-tuning step or a
    new state dict makes a new one). Tiled prediction folds 3D networks only (a 2D
    image's figures stay those the tests and benchmarks were measured with).
    """
    return model if model.config.norm != "batch" else _folded(model)


def _fold(model: UNet) -> UNet:
    fused = copy.deepcopy(model).eval()
    for block in fused.modules():
        if isinstance(block, TwoConv):
            for i in (0, 3):  # conv, norm, relu, conv, norm, relu
                block[i] = fuse_conv_bn_eval(block[i], block[i + 1])
                block[i + 1] = torch.nn.Identity()
    return fused


_folded = PerWeights(_fold)


def _probabilities(model, xb: torch.Tensor, views: int) -> torch.Tensor:
    """Softmax of the model on a batch, averaged over its first ``views`` views."""
    if views == 1:
        return torch.softmax(model(xb).float(), dim=1)
    total = None
    for k in range(views):
        xk = view(xb, k).contiguous(memory_format=memory_format(xb.dim()))
        p = view(torch.softmax(model(xk).float(), dim=1), k, inverse=True)
        total = p if total is None else total.add_(p)
    return total.div_(views)


def _tiled(model, x, tile, overlap, batch, dev, views=1) -> Generator[int, None, np.ndarray]:
    """Blend the tiles' probabilities on ``dev``, in place: the sums and their weights stay
    torch tensors until the end (a tile costs one multiply-add, not a copy to numpy and back).
    """
    slices = tile_slices(x.shape[1:], tile, overlap)
    source = torch.from_numpy(np.ascontiguousarray(x))
    model = ready(folded(model) if model.config.spatial_dims == 3 else model, dev)
    window = torch.tensor(blend_window(*source[(0, *slices[0])].shape), device=dev)  # a copy: the cache is read-only
    use_amp = dev.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    fmt = memory_format(source.dim() + 1)
    acc = torch.zeros((model.config.out_channels, *x.shape[1:]), dtype=torch.float32, device=dev)
    weight = torch.zeros(x.shape[1:], dtype=torch.float32, device=dev)
    for start in range(0, len(slices), batch):
        group = slices[start : start + batch]
        with torch.inference_mode():
            parts = [source[(slice(None), *s)] for s in group]
            xb = (parts[0][None] if len(parts) == 1 else torch.stack(parts)).to(dev, non_blocking=True)
            xb = xb.contiguous(memory_format=fmt)
            with torch.autocast(dev.type, dtype=amp_dtype, enabled=use_amp):
                probs = _probabilities(model, xb, views)
            for s, p in zip(group, probs):
                acc[(slice(None), *s)].addcmul_(p, window)
                weight[s].add_(window)
        # yielded outside inference mode: it is thread-local, and a job dropped here (cancelled,
        # or closed from another thread) would leave its worker thread in it, with no gradients
        # for the next job there (fine-tuning failed so)
        yield start + len(group)
    acc.div_(weight)
    return acc.cpu().numpy() if dev.type != "cpu" else acc.numpy()
