"""The nuclei of a synthetic image: placement, shapes, rasterisation, overlaps.

Helpers of :mod:`napari_unet.synth.images`. Nuclei are kept as a dict of per-object arrays and
rasterised together, in batches of similar box size, so no Python loop runs per nucleus.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree
from skimage.measure import label as connected_components

from napari_unet.synth.config import SynthConfig, log_uniform, uniform


def centres(rng, extent, n: int, d: float, p_clustered: float, *, group: float = 30,
            spread: float = 0.45) -> np.ndarray:
    """``n`` object centres in a box of ``extent`` (2D or 3D), uniform or, with probability
    ``p_clustered``, gathered in clusters of 3 to ``group`` objects whose size grows with
    their count (``spread`` × the diameter ``d`` × the count's square or cube root).
    """
    extent = np.asarray(extent, dtype=np.float64)
    dims = len(extent)
    c = rng.uniform(0, 1, (n, dims)) * extent
    if rng.random() < p_clustered:
        k = max(1, round(n / rng.uniform(3, group)))
        heads = rng.uniform(0, 1, (k, dims)) * extent
        who = rng.integers(0, k, n)
        size = spread * d * np.bincount(who, minlength=k)[who] ** (1 / dims)
        clustered = rng.random(n) > rng.uniform(0, 0.3)  # a few stay scattered
        c[clustered] = (heads[who] + rng.normal(0, 1, (n, dims)) * size[:, None])[clustered]
    return c


def _relax(rng, c: np.ndarray, a, b, theta, packing: float, iters: int = 4) -> np.ndarray:
    """Push ellipses apart until, along the line between two centres, the centres are at
    least ``packing`` times the sum of the two ellipses' radii in that direction apart.

    Elongated neighbours can so lie side by side as closely as end to end.
    """
    for _ in range(iters):
        pairs = cKDTree(c).query_pairs(2 * packing * a.max(), output_type="ndarray")
        if len(pairs) == 0:
            break
        i, j = pairs.T
        d = c[j] - c[i] + rng.normal(0, 1e-3, (len(i), 2))
        dist = np.hypot(d[:, 0], d[:, 1])
        phi = np.arctan2(d[:, 0], d[:, 1])
        reach = sum(
            a[k] * b[k] / np.hypot(b[k] * np.cos(phi - theta[k]), a[k] * np.sin(phi - theta[k]))
            for k in (i, j)
        )
        push = np.clip(packing * reach - dist, 0, None) / (2 * dist)
        step = d * push[:, None]
        np.add.at(c, i, -step)
        np.add.at(c, j, step)
    return c


def draw_objects(rng, cfg: SynthConfig, shape, d: float, floor: float) -> dict[str, np.ndarray]:
    """Per-nucleus parameters, bottom to top (out-of-focus lowest), none dimmer than floor."""
    n = rng.poisson(log_uniform(rng, cfg.coverage) * shape[0] * shape[1] / (np.pi * d * d / 4))
    n = int(np.clip(n, 1, min(cfg.max_objects, 2**18)))  # ids must fit in 20 bits
    r = np.clip(0.5 * d * np.exp(rng.normal(0, uniform(rng, cfg.size_spread), n)), 1.75, 0.9 * d)
    c = centres(rng, shape, n, d, cfg.p_clustered)
    p_div, p_bean = uniform(rng, cfg.p_dividing), uniform(rng, cfg.p_bean)
    kind = np.digitize(rng.random(n), np.cumsum([p_div, p_div, p_div, p_bean]))
    peanut, pair, plate, bean = (kind == k for k in range(4))
    aspect = 1 + np.abs(rng.normal(0, uniform(rng, cfg.elongation), n))
    aspect = np.clip(np.where(bean, aspect + 0.5, aspect), 1, 2.6)
    aspect = np.where(peanut, 1.0, np.where(plate, rng.uniform(2.2, 4, n), aspect))
    r = r * np.where(peanut, 1.2, np.where(plate, 0.5, 1.0))
    theta = rng.uniform(0, np.pi, n)
    if rng.random() < cfg.p_aligned:  # confluent cells: neighbours share an orientation
        wave = np.sin(c @ rng.normal(0, 1.5 / max(shape), 2) + rng.uniform(0, 2 * np.pi))
        theta = rng.uniform(0, np.pi) + 0.8 * wave + rng.normal(0, 0.35, n)
    k = np.arange(2, 6)
    coeff = (rng.normal(0, 1, (n, 4)) + 1j * rng.normal(0, 1, (n, 4))) / np.sqrt(2)
    coeff *= uniform(rng, cfg.wobble) / k**0.8 * np.where(plate, 0.3, 1.0)[:, None]
    coeff *= np.minimum(1, 0.3 / np.maximum(np.abs(coeff).sum(1), 1e-9))[:, None]
    a, b = r * np.sqrt(aspect), r / np.sqrt(aspect)
    c = _relax(rng, c, a * np.where(peanut, 1.2, 1.0), b, theta, uniform(rng, cfg.packing))
    s = np.where(peanut, rng.uniform(0.3, 0.55, n), 0.0)
    bright = np.exp(rng.normal(0, uniform(rng, cfg.brightness_spread), n))
    bright = bright / np.percentile(bright, 90) * np.where(plate, rng.uniform(1.5, 2.5, n), 1)
    tilt = uniform(rng, (0, cfg.tilt[1]), n) * np.exp(2j * np.pi * rng.random(n))
    o = dict(
        cy=c[:, 0], cx=c[:, 1], a=a, b=b, theta=theta,
        s=s, l=1 - 0.8 * s, bend=np.where(bean, rng.uniform(0.45, 0.75, n), 0.0), coeff=coeff,
        bright=bright, tex=np.where(plate, 0.3, 1.0), dome=uniform(rng, cfg.dome, n) * ~plate,
        rim=uniform(rng, (0, cfg.rim[1]), n), tu=tilt.real, tv=tilt.imag,
    )  # fmt: skip
    o = _split_pairs(rng, o, pair)
    n = len(o["cy"])
    o["oof"] = rng.random(n) < uniform(rng, cfg.p_out_of_focus)
    dim = np.where(o["oof"], uniform(rng, cfg.defocus_dim), 1.0)
    o["bright"] = np.clip(o["bright"] * dim, floor, 2.5)
    order = np.argsort(rng.random(n) + ~o["oof"])
    return {key: v[order] for key, v in o.items()}


def _split_pairs(rng, o: dict[str, np.ndarray], pair: np.ndarray) -> dict[str, np.ndarray]:
    """Replace each ``pair`` nucleus by two small, bright daughters (round or anaphase bars)."""
    idx = np.concatenate([np.flatnonzero(~pair), np.repeat(np.flatnonzero(pair), 2)])
    o = {key: v[idx] for key, v in o.items()}
    d = slice(len(idx) - 2 * int(pair.sum()), None)
    m = len(idx) - d.start
    rd = np.sqrt(o["a"][d] * o["b"][d]) * np.repeat(rng.uniform(0.5, 0.68, m // 2), 2)
    aspect = np.repeat(rng.uniform(1.0, 2.5, m // 2), 2)
    bd = rd / np.sqrt(aspect)
    gap = np.repeat(rng.uniform(0.6, 2.5, m // 2), 2)
    sep = (bd * rng.uniform(1.05, 1.3, m) + gap / 2) * np.tile([-1, 1], m // 2)
    phi = np.repeat(rng.uniform(0, np.pi, m // 2), 2)
    o["cy"][d] += sep * np.sin(phi)
    o["cx"][d] += sep * np.cos(phi)
    o["a"][d], o["b"][d], o["theta"][d] = rd * np.sqrt(aspect), bd, phi + np.pi / 2
    o["coeff"][d] *= 0.3
    o["bright"][d] *= rng.uniform(1.3, 2.2, m)
    o["tex"][d], o["bend"][d], o["dome"][d] = 0.3, 0.0, 0.0
    return o


def rasterise(o: dict[str, np.ndarray], shape) -> tuple[np.ndarray, ...]:
    """Pixels inside each nucleus: (object, flat index, normalised radius, u, v)."""
    ext = np.maximum(o["a"], o["b"]) * (1 + np.abs(o["coeff"]).sum(1)) * (1 + o["bend"])
    half = np.ceil(ext * np.maximum(1, o["s"] + o["l"]) + 1).astype(int)
    group = np.ceil(np.log(half) / np.log(1.4))  # similar box sizes share one batch
    sels = [np.flatnonzero(group == g) for g in np.unique(group)]
    out = [_rasterise_batch(o, shape, sel, int(half[sel].max())) for sel in sels]
    return tuple(np.concatenate(parts) for parts in zip(*out))


def _col(x: np.ndarray) -> np.ndarray:
    """Per-object values as float32 of shape (n, 1, 1), to broadcast over boxes."""
    return np.asarray(x, np.float32)[:, None, None]


def _rasterise_batch(o, shape, sel: np.ndarray, half: int) -> tuple[np.ndarray, ...]:
    """:func:`rasterise` for objects ``sel``, all in boxes of side ``2 * half + 1``."""
    f32 = np.float32
    g = np.arange(-half, half + 1, dtype=f32)
    oy, ox = np.floor(o["cy"][sel]).astype(int), np.floor(o["cx"][sel]).astype(int)
    dy, dx = _col(oy - o["cy"][sel]) + g[None, :, None], _col(ox - o["cx"][sel]) + g[None, None, :]
    cos, sin = _col(np.cos(o["theta"][sel])), _col(np.sin(o["theta"][sel]))
    u = (dx * cos + dy * sin) / _col(o["a"][sel])
    v = (dy * cos - dx * sin) / _col(o["b"][sel])
    bend = _col(o["bend"][sel])
    v = v - bend * (u * u - 0.3)
    uu = np.abs(u) - _col(o["s"][sel])
    rho = np.sqrt(uu * uu + v * v) / _col(o["l"][sel])
    z = (u + 1j * v).astype(np.complex64)
    z /= np.maximum(np.abs(z), 1e-6)
    zk, radius = z, np.ones_like(rho)
    for k in range(4):
        zk = zk * z
        radius += (zk * o["coeff"][sel, k].astype(np.complex64)[:, None, None]).real
    rn = rho / radius
    inside = rn < 1
    obj, iy, ix = np.nonzero(inside)
    gy, gx = oy[obj] + iy - half, ox[obj] + ix - half
    ok = (gy >= 0) & (gy < shape[0]) & (gx >= 0) & (gx < shape[1])
    return sel[obj][ok], (gy * shape[1] + gx)[ok], rn[inside][ok], u[inside][ok], v[inside][ok]


def resolve_overlaps(
    obj: np.ndarray, idx: np.ndarray, prio: np.ndarray, n: int, shape, cfg: SynthConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Drop hidden, tiny or fragmented nuclei; return the kept mask and the owner map.

    Where nuclei overlap, the entry of highest ``prio`` owns the pixel; the low 20 bits of
    ``prio`` hold the object's id (its index + 1).
    """
    keep = np.ones(n, bool)
    while True:  # each round drops at least one nucleus, so this ends
        sel = keep[obj]
        key = np.zeros(shape[0] * shape[1], np.int64)
        np.maximum.at(key, idx[sel], prio[sel])
        owner = (key & (2**20 - 1)).astype(np.int32)
        full = np.bincount(obj[sel], minlength=n)
        vis = np.bincount(owner, minlength=n + 1)[1:]
        bad = keep & ((vis < cfg.min_area) | (vis < cfg.min_visible * full))
        if not bad.any():
            comp = connected_components(owner.reshape(shape), connectivity=1)
            first = np.zeros(comp.max() + 1, np.int64)
            first[comp.ravel()] = owner
            bad = keep & (np.bincount(first[1:], minlength=n + 1)[1:] > 1)
            if not bad.any():
                break
        keep &= ~bad
    return keep, owner
