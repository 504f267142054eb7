"""Synthetic 2D fluorescence-nuclei images with exact instance labels.

Every image draws its own parameters (size, shape, density, texture, blur, background,
noise, dtype) from the wide ranges of a :class:`SynthConfig`, so that a network trained only
on these images meets real microscope nuclei as one more draw. Nuclei are rasterised in
batched local boxes. Where they overlap, one owns each pixel: the upper one (z-order, the
lower one may shine through a little) or, in "squeezed" images, the one whose centre is
nearer, which gives the flat contacts of confluent cells. Nuclei left too hidden, too
small or in pieces are dropped before anything is drawn, so every label is visible in the
image and every drawn nucleus is labelled. Out-of-focus nuclei are labelled, as annotators
label every nucleus they can see, and none is dimmer than 2.5 noise sigmas; the large,
faint, unlabelled blobs of the background stand for nuclei too far from focus to annotate.

Units: before the camera, a bright nucleus is about 1 (``SynthSample.clean``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from napari_unet.synth.config import SynthConfig, log_uniform, uniform, uniform_low
from napari_unet.synth.objects import draw_objects, rasterise, resolve_overlaps

_DTYPES = ("uint8", "uint12", "uint16", "float32")


@dataclass(frozen=True, eq=False)  # eq=False: arrays do not compare with ==
class SynthSample:
    """One synthetic image and its instance labels (int32, 0 = background, ids 1..n)."""

    image: np.ndarray  # 2D, uint8 / uint16 / float32
    labels: np.ndarray  # int32, same shape
    clean: np.ndarray | None = None  # noiseless float32 image, when asked for


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise scaled to unit standard deviation."""
    f = ndi.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma)
    return f / max(float(f.std()), 1e-6)


def _illumination(rng, cfg: SynthConfig, shape) -> np.ndarray:
    y = np.linspace(-1, 1, shape[0], dtype=np.float32)[:, None]
    x = np.linspace(-1, 1, shape[1], dtype=np.float32)[None, :]
    cy, cx = rng.uniform(-0.5, 0.5, 2)
    vig = uniform(rng, cfg.vignetting) * ((y - cy) ** 2 + (x - cx) ** 2) / (2 * 1.5**2)
    g, phi = uniform(rng, cfg.gradient), rng.uniform(0, 2 * np.pi)
    return 1 - vig + 0.5 * g * (np.sin(phi) * y + np.cos(phi) * x)


def _background(rng, cfg: SynthConfig, shape, d: float) -> np.ndarray:
    """Smooth autofluorescence haze plus large unlabelled out-of-focus blobs."""
    low = tuple(max(4, s // 4) for s in shape)
    haze = smooth_noise(rng, low, max(2.0, min(low) / 6))
    bg = uniform(rng, cfg.haze) * np.clip(0.5 + 0.35 * haze, 0, None)
    sigma = max(1.0, 0.25 * d * rng.uniform(0.6, 1.2))  # blob sigma at 1/4 scale
    blobs = np.zeros(low, np.float32)
    nb = rng.poisson(rng.uniform(0, 8) * shape[0] * shape[1] / 256**2)
    peaks = uniform(rng, cfg.blobs) * rng.uniform(0.2, 1, nb) * 2 * np.pi * sigma**2
    np.add.at(blobs, (rng.integers(0, low[0], nb), rng.integers(0, low[1], nb)), peaks)
    bg = bg + ndi.gaussian_filter(blobs, sigma)
    return ndi.zoom(bg, (shape[0] / low[0], shape[1] / low[1]), order=1)[: shape[0], : shape[1]]


def _texture(rng, cfg: SynthConfig, shape, d: float) -> np.ndarray:
    """Multiplicative interior texture field (mean about 1): chromatin, nucleoli, spots."""
    t = 1 + uniform_low(rng, cfg.texture) * smooth_noise(rng, shape, max(0.8, 0.1 * d))
    amp = uniform_low(rng, cfg.speckle)
    if amp > 0.02:
        t = t + amp * smooth_noise(rng, shape, rng.uniform(0.6, 1.1))
    depth = uniform_low(rng, cfg.spots)
    if depth > 0.05 and d > 10:
        f = smooth_noise(rng, shape, max(0.8, 0.06 * d))
        t = t * (1 - depth * np.clip(f - 1.7, 0, 0.5) * 2)
        t = t * (1 + rng.uniform(0, 1.5) * depth * np.clip(-f - 1.9, 0, 0.5) * 2)
    return np.clip(t, 0.05, None)


def camera(rng, cfg: SynthConfig, clean: np.ndarray, photons: float, read: float, ref: float):
    """Shot and read noise, then gain, offset, quantisation and saturation of a dtype.

    ``photons`` electrons per unit of ``clean``; ``ref`` (bright nuclei on the background)
    lands at ``fill`` of the dtype's full scale.
    """
    e = rng.poisson(clean * photons).astype(np.float32)
    e += read * rng.standard_normal(clean.shape, dtype=np.float32)
    w = np.asarray(cfg.dtype_weights, float)
    kind = _DTYPES[rng.choice(4, p=w / w.sum())]
    full = {"uint8": 255.0, "uint12": 4095.0, "uint16": 65535.0}.get(kind, 10 ** rng.uniform(0, 4))
    offset = rng.uniform(0, 0.04) * full * (rng.random() < 0.6)
    # saturate bright nuclei at most, never the background
    fill = min(log_uniform(rng, cfg.fill), 0.8 * ref / max(float(np.median(clean)), 1e-6))
    value = e * (fill * full / (photons * ref)) + offset
    if kind == "float32":
        return value.astype(np.float32)
    value = np.clip(np.rint(value), 0, full)
    return value.astype(np.uint8 if kind == "uint8" else np.uint16)


def _paint(rng, cfg: SynthConfig, o, shape, d: float, pixels, on_top, gain: float) -> np.ndarray:
    """Blurred nucleus signal: profile x brightness x texture, out-of-focus ones blurred more.

    ``pixels`` are the kept (object, flat index, normalised radius, u, v) of
    :func:`rasterise`; pixels not ``on_top`` (hidden by another nucleus) add ``gain`` of
    their value to the one above.
    """
    obj, idx, rn, u, v = pixels
    tex = _texture(rng, cfg, shape, d).ravel()[idx]
    rpx = np.sqrt(o["a"] * o["b"])[obj]
    thick = 1 - np.sqrt(np.clip(1 - rn * rn, 0, 1))  # thinner towards the border of a dome
    val = (1 - o["dome"][obj] * thick) * (1 + o["tu"][obj] * u + o["tv"][obj] * v)
    val += o["rim"][obj] * np.exp(-(((1 - rn) * rpx / 1.2) ** 2))
    val *= o["bright"][obj] * (1 + o["tex"][obj] * (tex - 1)) * np.where(on_top, 1.0, gain)
    psf = min(uniform(rng, cfg.psf_sigma), 0.15 * d)
    oof = o["oof"][obj]
    size = shape[0] * shape[1]
    layer = np.bincount(idx[~oof], val[~oof], size).astype(np.float32).reshape(shape)
    signal = ndi.gaussian_filter(layer, psf)
    if oof.any():
        extra = min(uniform(rng, cfg.defocus), 0.2 * d)
        layer = np.bincount(idx[oof], val[oof], size).astype(np.float32).reshape(shape)
        signal += ndi.gaussian_filter(layer, np.hypot(psf, extra))
    return signal


def synth_image(
    seed: int | np.random.Generator,
    shape: tuple[int, int] = (256, 256),
    config: SynthConfig = SynthConfig(),
    *,
    with_clean: bool = False,
) -> SynthSample:
    """Draw one synthetic fluorescence-nuclei image with exact instance labels.

    Parameters
    ----------
    seed : int or numpy.random.Generator
        Same seed, same image.
    shape : tuple of int
        Image height and width.
    config : SynthConfig
        Ranges of the per-image parameters.
    with_clean : bool
        Also return the noiseless image (before shot/read noise and quantisation).

    Returns
    -------
    SynthSample
        ``image`` (uint8, uint16 or float32) and ``labels`` (int32, ids 1..n).
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    shape = (int(shape[0]), int(shape[1]))
    d = log_uniform(rng, config.size)
    b0, photons = uniform(rng, config.background), log_uniform(rng, config.photons)
    read = uniform(rng, config.read_noise)
    # the dimmest nucleus still stands 2.5 noise sigmas above the background
    floor = max(0.25, 2.5 * np.sqrt((b0 + 0.2) * photons + read**2) / photons)
    o = draw_objects(rng, config, shape, d, floor)
    n = len(o["cy"])
    obj, idx, rn, u, v = rasterise(o, shape)
    squeeze = rng.random() < config.p_squeezed
    prio = obj.astype(np.int64) + 1  # z-order: the upper nucleus hides the lower one
    if squeeze:  # the nucleus whose centre is nearer (relative to its size) takes the pixel
        prio += np.round((1 - rn) * 4096).astype(np.int64) << 20
    keep, owner = resolve_overlaps(obj, idx, prio, n, shape, config)
    sel = keep[obj]
    obj, idx, rn, u, v = obj[sel], idx[sel], rn[sel], u[sel], v[sel]
    new_id = np.concatenate([[0], np.cumsum(keep)]).astype(np.int32)
    labels = new_id[owner].reshape(shape)
    gain = 0.0 if squeeze else uniform(rng, config.overlap_gain)
    signal = _paint(rng, config, o, shape, d, (obj, idx, rn, u, v), owner[idx] == obj + 1, gain)
    signal = signal + _background(rng, config, shape, d)
    clean = np.clip(b0 + _illumination(rng, config, shape) * signal, 0, None).astype(np.float32)
    image = camera(rng, config, clean, photons, read, b0 + 1)
    return SynthSample(image=image, labels=labels, clean=clean if with_clean else None)


def synth_dataset(
    n: int, seed: int, shape: tuple[int, int] = (256, 256), config: SynthConfig = SynthConfig()
) -> list[SynthSample]:
    """Draw ``n`` independent images; image ``i`` depends only on ``seed`` and ``i``."""
    children = np.random.SeedSequence(seed).spawn(n)
    return [synth_image(np.random.default_rng(s), shape, config) for s in children]
