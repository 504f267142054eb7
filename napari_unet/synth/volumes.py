"""Synthetic 3D fluorescence-nuclei stacks (confocal-like) with exact instance labels.

Each volume draws its own parameters from a :class:`VolumeConfig`: the Z spacing (1-5x the
in-plane spacing), nucleus size, shape and density, texture, PSF, attenuation and noise.
Nuclei are ellipsoids of random orientation with a smoothly irregular surface, placed
uniformly or in touching clusters and laid out in physical units, then sampled on the
anisotropic voxel grid, so a nucleus spans fewer planes than rows when Z is coarser. Where
nuclei overlap, the voxel goes to the one whose centre is nearer relative to its size: the
flat contacts of packed nuclei. A nucleus left in pieces keeps its largest piece; one too
small or mostly outside the stack is dropped before anything is drawn, so every label is
one connected object, visible in the image, and every drawn nucleus is labelled.

The image is blurred by a Gaussian PSF longer along Z than in-plane, dimmed with depth
(scattering), and recorded by the camera model of the 2D generator (uint16 or float32).
Units: before the camera, a bright nucleus is about 1 (``SynthVolume.clean``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree
from skimage.measure import label as connected_components

from napari_unet.synth.config import Range, log_uniform, uniform, uniform_low
from napari_unet.synth.images import camera, smooth_noise
from napari_unet.synth.objects import centres

_ID_BITS = 20  # object ids live in the low bits of the ownership key (at most 2**20 - 1 nuclei)
_BOX_VOXELS = 4_000_000  # voxels rasterised at once: bounds memory to ~100 MB


@dataclass(frozen=True)
class VolumeConfig:
    """Ranges from which each volume draws its parameters (uniformly unless noted)."""

    z_ratio: Range = (1.0, 5.0)  # Z spacing / in-plane spacing: confocal stacks are 1-5x coarser in Z
    pixel_size: Range = (0.1, 0.5)  # in-plane voxel size, µm (log-uniform); only scales the spacing reported
    size: Range = (8.0, 24.0)  # typical nucleus diameter of a volume, in-plane px (log-uniform)
    size_spread: Range = (0.05, 0.25)  # lognormal sigma of nucleus diameters around it
    elongation: Range = (0.05, 0.35)  # sigma of |N(0, s)| stretching each semi-axis (volume kept)
    wobble: Range = (0.0, 0.08)  # amplitude of smooth surface irregularity, relative to the radius
    coverage: Range = (0.05, 0.3)  # fraction of the volume filled by nuclei (log-uniform)
    p_clustered: float = 0.6  # probability that nuclei gather in clusters, not uniformly
    packing: Range = (0.75, 1.0)  # closest approach, in sums of radii facing each other (< 1: pressed flat)
    min_voxels: int = 20  # drop nuclei with fewer visible voxels
    min_visible: float = 0.3  # drop nuclei with less of their volume inside the stack
    brightness_spread: Range = (0.05, 0.4)  # lognormal sigma of per-nucleus brightness
    dome: Range = (0.0, 0.5)  # darkening towards a nucleus's border (thinner there)
    texture: Range = (0.0, 0.3)  # amplitude of smooth chromatin texture (std, relative)
    spots: Range = (0.0, 0.6)  # depth of dark nucleoli
    psf_sigma: Range = (0.5, 1.5)  # lateral Gaussian PSF sigma, in-plane px (at most 0.12 x diameter)
    psf_axial: Range = (2.0, 4.0)  # axial / lateral PSF length in physical units: longer in Z
    attenuation: Range = (0.0, 0.6)  # fraction of the signal lost from the first plane to the last
    background: Range = (0.0, 0.2)  # background offset, relative to bright nuclei (= 1)
    haze: Range = (0.0, 0.12)  # amplitude of smooth out-of-focus haze
    photons: Range = (30.0, 3000.0)  # photoelectrons at bright nuclei (log-uniform)
    read_noise: Range = (0.5, 3.0)  # camera read noise, electrons
    fill: Range = (0.1, 1.2)  # bright nuclei as a fraction of full scale, > 1 saturates
    # probabilities of uint8, uint16 with 12-bit range, uint16 with 16-bit range, float32
    dtype_weights: tuple[float, float, float, float] = (0.0, 0.4, 0.3, 0.3)
    max_objects: int = 3000  # cap on drawn nuclei, for speed on large volumes


@dataclass(frozen=True, eq=False)  # eq=False: arrays do not compare with ==
class SynthVolume:
    """One synthetic stack, its instance labels (int32, 0 = background, ids 1..n) and voxel size."""

    image: np.ndarray  # (Z, Y, X), uint16 or float32
    labels: np.ndarray  # int32, same shape
    spacing: tuple[float, float, float]  # physical voxel size (z, y, x), µm
    clean: np.ndarray | None = None  # noiseless float32 image, when asked for


def _rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` uniformly random rotation matrices (from unit quaternions), shape (n, 3, 3)."""
    w, x, y, z = rng.standard_normal((n, 4)).T
    norm = np.sqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w / norm, x / norm, y / norm, z / norm
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], 1)  # fmt: skip


def _reach(rot: np.ndarray, axes: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Distance from an ellipsoid's centre to its surface along unit ``direction`` (per row)."""
    local = np.einsum("pjk,pj->pk", rot, direction) / axes
    return 1 / np.sqrt((local * local).sum(1))


def _place(rng, cfg: VolumeConfig, extent: np.ndarray, d: float) -> dict[str, np.ndarray]:
    """Nuclei in physical units (in-plane px): centres (z, y, x), semi-axes, rotations, brightness."""
    n = rng.poisson(log_uniform(rng, cfg.coverage) * extent.prod() / (np.pi * d**3 / 6))
    n = int(np.clip(n, 1, min(cfg.max_objects, 2**_ID_BITS - 1)))
    r = np.clip(0.5 * d * np.exp(rng.normal(0, uniform(rng, cfg.size_spread), n)), 1.5, 0.9 * d)
    stretch = 1 + np.abs(rng.normal(0, uniform(rng, cfg.elongation), (n, 3)))
    axes = r[:, None] * stretch / np.cbrt(stretch.prod(1))[:, None]
    rot = _rotations(rng, n)
    c = centres(rng, extent, n, d, cfg.p_clustered, group=20, spread=0.5)
    packing = uniform(rng, cfg.packing)
    for _ in range(4):  # push apart to ``packing`` times the radii facing each other
        pairs = cKDTree(c).query_pairs(2 * packing * axes.max(), output_type="ndarray")
        if len(pairs) == 0:
            break
        i, j = pairs.T
        delta = c[j] - c[i] + rng.normal(0, 1e-3, (len(i), 3))
        dist = np.sqrt((delta * delta).sum(1))
        unit = delta / dist[:, None]
        reach = _reach(rot[i], axes[i], unit) + _reach(rot[j], axes[j], unit)
        step = delta * (np.clip(packing * reach - dist, 0, None) / (2 * dist))[:, None]
        np.add.at(c, i, -step)
        np.add.at(c, j, step)
    bright = np.exp(rng.normal(0, uniform(rng, cfg.brightness_spread), n))
    return dict(c=c, axes=axes, rot=rot, bright=bright / np.percentile(bright, 90), dome=uniform(rng, cfg.dome, n))


def _rasterise(o, shape, r: float, field: np.ndarray, wobble: float) -> tuple[np.ndarray, ...]:
    """Voxels inside each nucleus: (object, flat index, normalised radius), in batches of similar boxes.

    The surface is displaced by ``wobble`` times the smooth unit ``field`` at each voxel.
    """
    ext = o["axes"].max(1) * (1 + 3 * wobble) + 1  # physical half-extent of each box
    half = np.stack([np.ceil(ext / r), np.ceil(ext), np.ceil(ext)], 1).astype(int)
    group = np.ceil(np.log(half[:, 1]) / np.log(1.4))  # similar box sizes share one batch
    parts = []
    for g in np.unique(group):
        sel = np.flatnonzero(group == g)
        h = half[sel].max(0)
        per = max(1, _BOX_VOXELS // int(np.prod(2 * h + 1)))
        parts += [_rasterise_batch(o, shape, r, field, wobble, sel[k : k + per], h) for k in range(0, len(sel), per)]
    return tuple(np.concatenate(p) for p in zip(*parts))


def _rasterise_batch(o, shape, r, field, wobble, sel, half) -> tuple[np.ndarray, ...]:
    """:func:`_rasterise` for objects ``sel``, all in boxes of half-size ``half`` (z, y, x voxels)."""
    f32 = np.float32
    vox = o["c"][sel] / np.array([r, 1.0, 1.0])  # centres in voxels
    origin = np.floor(vox).astype(int)
    d = []  # physical offsets from the centre along z, y, x, each broadcastable to (n, bz, by, bx)
    for ax in range(3):
        g = np.arange(-half[ax], half[ax] + 1, dtype=f32)
        off = (origin[:, ax] - vox[:, ax]).astype(f32)[:, None] + g[None, :]
        off *= r if ax == 0 else 1.0
        d.append(off.reshape((len(sel),) + tuple(-1 if k == ax else 1 for k in range(3))))
    rot, axes = o["rot"][sel].astype(f32), o["axes"][sel].astype(f32)
    q = 0
    for k in range(3):  # squared normalised coordinate along the nucleus's own axis k
        col = rot[:, :, k, None, None, None]
        u = (col[:, 0] * d[0] + col[:, 1] * d[1] + col[:, 2] * d[2]) / axes[:, k, None, None, None]
        q = q + u * u
    rn = np.sqrt(q)
    obj, iz, iy, ix = np.nonzero(rn < 1 + 3 * wobble)
    gz, gy, gx = (origin[obj, ax] + i - half[ax] for ax, i in enumerate((iz, iy, ix)))
    ok = (gz >= 0) & (gz < shape[0]) & (gy >= 0) & (gy < shape[1]) & (gx >= 0) & (gx < shape[2])
    idx = (gz * shape[1] + gy) * shape[2] + gx
    obj, idx, rn = obj[ok], idx[ok], rn[obj[ok], iz[ok], iy[ok], ix[ok]]
    rn = rn - wobble * field.ravel()[idx]
    inside = rn < 1
    return sel[obj[inside]], idx[inside], np.clip(rn[inside], 0, None)


def _owners(obj, idx, rn, n: int, shape, cfg: VolumeConfig, full: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Resolve overlaps and drop hidden, tiny or partial nuclei: (kept mask, owner id per voxel).

    Each voxel goes to the nucleus whose centre is nearest relative to its size; each kept
    nucleus keeps only its largest face-connected piece. ``full`` is each nucleus's whole
    volume in voxels (inside the stack or not).
    """
    prio = (np.round((2 - rn) * 2**16).astype(np.int64) << _ID_BITS) | (obj + 1)
    keep = np.ones(n, bool)
    while True:  # each round drops at least one nucleus, so this ends
        key = np.zeros(int(np.prod(shape)), np.int64)
        sel = keep[obj]
        np.maximum.at(key, idx[sel], prio[sel])
        owner = (key & (2**_ID_BITS - 1)).astype(np.int32)
        pieces = connected_components(owner.reshape(shape), connectivity=1).ravel()
        size = np.bincount(pieces)
        piece_owner = np.zeros(len(size), np.int64)
        piece_owner[pieces] = owner
        # the largest piece of each owner: sort pieces by owner, then by size (largest last)
        order = np.lexsort((size, piece_owner))
        last = np.r_[piece_owner[order][1:] != piece_owner[order][:-1], True]
        largest = np.zeros(len(size), bool)
        largest[order[last]] = True
        largest[0] = True  # background (owner 0 is only ever piece 0)
        owner = np.where(largest[pieces], owner, 0)
        vis = np.bincount(owner, minlength=n + 1)[1:]
        bad = keep & ((vis < cfg.min_voxels) | (vis < cfg.min_visible * full))
        if not bad.any():
            return keep, owner
        keep &= ~bad


def _texture(rng, cfg: VolumeConfig, shape, sigma: np.ndarray) -> np.ndarray:
    """Multiplicative interior texture (mean about 1): smooth chromatin and dark nucleoli."""
    t = 1 + uniform_low(rng, cfg.texture) * smooth_noise(rng, shape, tuple(sigma))
    depth = uniform_low(rng, cfg.spots)
    if depth > 0.05:
        f = smooth_noise(rng, shape, tuple(0.6 * sigma))
        t = t * (1 - depth * np.clip(f - 1.7, 0, 0.5) * 2)
    return np.clip(t, 0.05, None)


def _coarse_noise(rng, shape, sigma: np.ndarray, factor: int = 4) -> np.ndarray:
    """:func:`smooth_noise` of a large ``sigma`` (voxels per axis), made at 1/``factor`` scale.

    Upsampled by separable linear interpolation (gathers, no BLAS: its threads stall on a
    busy 2-core machine): far faster than filtering or zooming the whole volume.
    """
    low = tuple(max(2, -(-s // factor)) for s in shape)
    f = smooth_noise(rng, low, tuple(np.maximum(np.asarray(sigma) / factor, 0.5)))
    for ax in (2, 1, 0):  # the last axis first: each step grows the array least
        n, m = shape[ax], low[ax]
        pos = np.clip((np.arange(n) + 0.5) * m / n - 0.5, 0, m - 1)  # pixel centres of both grids
        i = np.minimum(pos.astype(int), m - 2)
        w = (pos - i).astype(np.float32).reshape([-1 if k == ax else 1 for k in range(3)])
        lo, hi = np.take(f, i, axis=ax), np.take(f, i + 1, axis=ax)
        f = lo + (hi - lo) * w
    return f


def synth_volume(
    seed: int | np.random.Generator,
    shape: tuple[int, int, int] = (32, 128, 128),
    config: VolumeConfig = VolumeConfig(),
    *,
    with_clean: bool = False,
) -> SynthVolume:
    """Draw one synthetic 3D fluorescence-nuclei stack with exact instance labels.

    Parameters
    ----------
    seed : int or numpy.random.Generator
        Same seed, same volume.
    shape : tuple of int
        Planes, rows and columns (Z, Y, X).
    config : VolumeConfig
        Ranges of the per-volume parameters.
    with_clean : bool
        Also return the noiseless image (before shot/read noise and quantisation).

    Returns
    -------
    SynthVolume
        ``image`` (uint16 or float32), ``labels`` (int32, ids 1..n) and ``spacing`` (z, y, x).
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3:
        raise ValueError(f"shape must be (planes, rows, columns), got {shape}")
    r = float(uniform(rng, config.z_ratio))
    pixel = log_uniform(rng, config.pixel_size)
    d = log_uniform(rng, config.size)
    b0, photons = uniform(rng, config.background), log_uniform(rng, config.photons)
    read = uniform(rng, config.read_noise)
    attenuation = min(uniform(rng, config.attenuation), 0.99)
    # the dimmest nucleus still stands 2.5 noise sigmas above the background, at its depth
    floor = max(0.3, 2.5 * np.sqrt((b0 + 0.2) * photons + read**2) / photons)
    extent = np.array(shape, float) * np.array([r, 1.0, 1.0])
    o = _place(rng, config, extent, d)
    n = len(o["c"])
    to_voxels = np.array([1 / r, 1.0, 1.0])  # a physical length along z, y, x in voxels
    wobble = uniform(rng, config.wobble)
    field = _coarse_noise(rng, shape, 0.2 * d * to_voxels, factor=2)
    obj, idx, rn = _rasterise(o, shape, r, field, wobble)
    full = 4 / 3 * np.pi * o["axes"].prod(1) / r
    keep, owner = _owners(obj, idx, rn, n, shape, config, full)
    new_id = np.concatenate([[0], np.cumsum(keep)]).astype(np.int32)
    labels = new_id[owner].reshape(shape)

    # bright enough at its deepest plane, however strong the attenuation
    loss = np.log1p(-attenuation) / max(shape[0] - 1, 1)  # log of the signal kept per plane
    deepest = np.clip((o["c"][:, 0] + o["axes"].max(1)) / r, 0, shape[0] - 1)
    bright = np.clip(o["bright"], floor * np.exp(-loss * deepest), None)
    mine = owner[idx] == obj + 1  # the voxels each kept nucleus owns in the end
    obj, idx, rn = obj[mine], idx[mine], rn[mine]
    tex = _texture(rng, config, shape, 0.1 * d * to_voxels).ravel()[idx]
    layer = np.zeros(int(np.prod(shape)), np.float32)
    layer[idx] = bright[obj] * (1 - o["dome"][obj] * rn**4) * tex
    psf = min(uniform(rng, config.psf_sigma), 0.12 * d)
    axial = min(psf * uniform(rng, config.psf_axial), 0.3 * d)  # physical, then in planes below
    signal = ndi.gaussian_filter(layer.reshape(shape), (axial / r, psf, psf))
    haze = uniform(rng, config.haze) * np.clip(0.5 + 0.35 * _coarse_noise(rng, shape, 2 * d * to_voxels), 0, None)
    depth = np.exp(loss * np.arange(shape[0], dtype=np.float32))[:, None, None]
    clean = np.clip(b0 + depth * (signal + haze), 0, None).astype(np.float32)
    image = camera(rng, config, clean, photons, read, b0 + 1)
    spacing = (r * pixel, pixel, pixel)
    return SynthVolume(image=image, labels=labels, spacing=spacing, clean=clean if with_clean else None)


def synth_volumes(
    n: int, seed: int, shape: tuple[int, int, int] = (32, 128, 128), config: VolumeConfig = VolumeConfig()
) -> list[SynthVolume]:
    """Draw ``n`` independent volumes; volume ``i`` depends only on ``seed`` and ``i``."""
    children = np.random.SeedSequence(seed).spawn(n)
    return [synth_volume(np.random.default_rng(s), shape, config) for s in children]
