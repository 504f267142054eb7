"""A generated abdomen-like MR or CT volume with a tissue-class map: the medical phantom.

The anatomy is laid out in millimetres around the volume's centre and then sampled on the
(anisotropic) voxel grid, so a coarser Z spacing gives fewer, thicker slices of the same body.
Every structure is an ellipsoid of seeded size, position and in-plane rotation whose surface is
pushed in and out by a smooth random field (organs are not ellipsoids), and the structures nest:

- ``body`` (1): the trunk, an elliptic cross-section tapering towards both ends of the volume;
- ``organ`` (2): a liver-like organ on one side of the body;
- ``fluid`` (3): one or two fluid-filled structures (kidney/cyst-like) in the body, outside the organ;
- ``lesion`` (4): one or two small round lesions inside the organ: the small, rare class.

Labels are the class at each voxel centre. The image is each class's intensity with a smooth
texture, blurred by a Gaussian that is longer in Z (partial volume of thick slices), then, for MR,
multiplied by a smooth bias field and given Rician noise (arbitrary units, float32); for CT it is in
Hounsfield units with Gaussian noise (int16). Intensities jitter with the seed, shapes too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

Range = tuple[float, float]

CLASSES: dict[int, str] = {1: "body", 2: "organ", 3: "fluid", 4: "lesion"}

# Mean intensity per class (0 = outside the body). MR: a T2-like contrast in arbitrary units
# (fluid bright, lesion darker than the organ); CT: Hounsfield units of a contrast-enhanced abdomen.
_MR_MEANS = {0: 0.0, 1: 0.45, 2: 0.8, 3: 1.4, 4: 0.3}
_CT_MEANS = {0: -1000.0, 1: 20.0, 2: 95.0, 3: 5.0, 4: 45.0}


@dataclass(frozen=True)
class PhantomConfig:
    """What a phantom looks like; shapes and intensities then vary with the seed."""

    shape: tuple[int, int, int] = (40, 160, 160)  # Z, Y, X voxels
    spacing: tuple[float, float, float] = (3.0, 1.0, 1.0)  # mm per voxel, Z anisotropic like clinical MR
    modality: str = "MR"  # "MR" (arbitrary units, bias field) or "CT" (Hounsfield units)
    body_fill: Range = (0.78, 0.9)  # body width / field-of-view width, in-plane
    organ_size: Range = (0.38, 0.5)  # organ's in-plane diameter / body's width
    n_fluid: tuple[int, int] = (1, 2)  # fluid structures per volume (inclusive range)
    fluid_radius_mm: Range = (10.0, 16.0)  # in-plane semi-axis of a fluid structure, mm
    n_lesions: tuple[int, int] = (1, 2)  # lesions per volume (inclusive range)
    lesion_radius_mm: Range = (6.0, 10.0)  # lesion radius, mm: a few slices at 3 mm
    deform: float = 0.1  # amplitude of the smooth surface deformation, relative to a radius
    texture: float = 0.05  # std of smooth multiplicative tissue texture (relative)
    blur_mm: tuple[float, float, float] = (1.5, 0.7, 0.7)  # partial-volume Gaussian sigma, mm (Z: slice profile)
    contrast_jitter: float = 0.08  # relative spread of each class's mean intensity between seeds
    bias: float = 0.2  # MR only: std of the log bias field (about +-20 % gain across the body)
    noise: float = 0.04  # MR: Rician noise sigma relative to the organ's signal
    noise_hu: float = 12.0  # CT: noise std in Hounsfield units


@dataclass(frozen=True, eq=False)  # eq=False: arrays do not compare with ==
class Phantom:
    """One phantom volume and its class map."""

    image: np.ndarray  # float32 (MR) / int16 Hounsfield units (CT), ZYX
    labels: np.ndarray  # uint8 class map, 0 = background
    classes: dict[int, str]  # e.g. {1: "body", 2: "organ", 3: "fluid", 4: "lesion"}
    spacing: tuple[float, float, float]  # mm per voxel, (z, y, x)
    affine: np.ndarray  # 4x4, voxel (z, y, x) index -> world mm (RAS), spacing on the diagonal


def _coords(shape, spacing) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voxel-centre coordinates in mm relative to the volume's centre, broadcastable (z, y, x)."""
    axes = [((np.arange(n, dtype=np.float32) - (n - 1) / 2) * s) for n, s in zip(shape, spacing)]
    return axes[0][:, None, None], axes[1][None, :, None], axes[2][None, None, :]


def _interp_matrix(n_in: int, n_out: int) -> np.ndarray:
    """The (n_out, n_in) matrix of linear interpolation from n_in grid points onto n_out."""
    pos = np.linspace(0, n_in - 1, n_out)
    lo = np.minimum(pos.astype(int), n_in - 2) if n_in > 1 else np.zeros(n_out, int)
    w = np.zeros((n_out, n_in), np.float32)
    frac = pos - lo
    w[np.arange(n_out), lo] = 1 - frac
    if n_in > 1:
        w[np.arange(n_out), lo + 1] += frac
    return w


def _field(rng: np.random.Generator, shape, spacing, scale_mm: float) -> np.ndarray:
    """A smooth random field of unit std, with features about ``scale_mm`` across.

    Drawn on a coarse grid (a few cells per feature) and interpolated up: fast at any size.
    """
    cell = scale_mm / 3
    coarse = tuple(max(3, int(np.ceil(n * s / cell)) + 1) for n, s in zip(shape, spacing))
    f = ndi.gaussian_filter(rng.standard_normal(coarse).astype(np.float32), 1.0, mode="wrap")
    for axis in (2, 1, 0):  # separable linear interpolation, a matrix product per axis, Z last (largest)
        f = np.moveaxis(np.tensordot(_interp_matrix(coarse[axis], shape[axis]), f, axes=(1, axis)), 0, axis)
    return (f - f.mean()) / max(float(f.std()), 1e-6)


def _ellipsoid(zyx, centre, axes, angle: float, bump: np.ndarray | None, deform: float) -> np.ndarray:
    """Voxels inside an ellipsoid rotated by ``angle`` in-plane, its surface pushed by ``bump``."""
    z, y, x = (c - c0 for c, c0 in zip(zyx, centre))
    ca, sa = np.cos(angle), np.sin(angle)
    u, v = ca * y + sa * x, -sa * y + ca * x
    r = np.sqrt((z / axes[0]) ** 2 + (u / axes[1]) ** 2 + (v / axes[2]) ** 2)
    return r < 1 + (deform * bump if bump is not None else 0)


def _anatomy(rng: np.random.Generator, cfg: PhantomConfig) -> np.ndarray:
    """The class map: body, then organ, fluid and lesions inside it (uint8)."""
    shape, spacing = cfg.shape, cfg.spacing
    zyx = _coords(shape, spacing)
    extent = [n * s for n, s in zip(shape, spacing)]
    bump = lambda scale: _field(rng, shape, spacing, scale)  # noqa: E731

    # body: elliptic cross-section, a long Z axis so it tapers towards both ends
    bx = rng.uniform(*cfg.body_fill) * extent[2] / 2
    by = bx * rng.uniform(0.65, 0.8)
    bz = extent[0] * rng.uniform(0.75, 1.0)
    body = _ellipsoid(zyx, (0, rng.normal(0, 3), rng.normal(0, 3)), (bz, by, bx),
                      rng.normal(0, 0.08), bump(40.0), cfg.deform)  # fmt: skip
    labels = body.astype(np.uint8)

    # organ: on a random side, inside the body
    side = rng.choice([-1.0, 1.0])
    ox = rng.uniform(*cfg.organ_size) * bx
    oy = ox * rng.uniform(0.7, 1.0)
    oz = min(extent[0] * rng.uniform(0.3, 0.4), bz * 0.8)
    ocentre = (rng.normal(0, 0.05) * extent[0], rng.uniform(-0.25, 0.05) * by, side * rng.uniform(0.3, 0.45) * bx)
    organ = _ellipsoid(zyx, ocentre, (oz, oy, ox), rng.uniform(-0.6, 0.6), bump(25.0), cfg.deform) & body
    labels[organ] = 2

    # fluid: posterior structures on the other side, outside the organ
    for i in range(rng.integers(cfg.n_fluid[0], cfg.n_fluid[1] + 1)):
        fx = rng.uniform(*cfg.fluid_radius_mm)
        centre = (rng.normal(0, 0.08) * extent[0], rng.uniform(0.2, 0.45) * by,
                  -side * (0.3 + 0.25 * i) * bx * rng.uniform(0.9, 1.1))  # fmt: skip
        axes = (fx * rng.uniform(1.5, 2.5), fx * rng.uniform(0.7, 1.0), fx)
        fluid = _ellipsoid(zyx, centre, axes, rng.uniform(-0.8, 0.8), bump(15.0), cfg.deform) & body & ~organ
        labels[fluid] = 3

    # lesions: small, round, well inside the organ
    inside = np.argwhere(ndi.binary_erosion(organ, iterations=2))
    for _ in range(rng.integers(cfg.n_lesions[0], cfg.n_lesions[1] + 1)):
        if len(inside) == 0:
            break
        r = rng.uniform(*cfg.lesion_radius_mm)
        idx = inside[rng.integers(len(inside))]
        centre = tuple(float(c[tuple(idx * (np.array(c.shape) > 1))]) for c in zyx)
        lesion = _ellipsoid(zyx, centre, (r, r, r) * rng.uniform(0.85, 1.15, 3), 0.0, None, 0.0) & organ
        labels[lesion] = 4
    return labels


def _render(rng: np.random.Generator, cfg: PhantomConfig, labels: np.ndarray) -> np.ndarray:
    """The image of a class map: class means, texture, partial-volume blur, bias field, noise."""
    ct = cfg.modality == "CT"
    means = _CT_MEANS if ct else _MR_MEANS
    jitter = {k: 1 + cfg.contrast_jitter * rng.standard_normal() for k in means}
    lut = np.array([means[k] * (jitter[k] if k else 1.0) for k in sorted(means)], np.float32)
    clean = lut[labels]
    tex = _field(rng, cfg.shape, cfg.spacing, 6.0)
    scale = (abs(means[2]) + 50.0) if ct else 1.0  # texture relative to tissue contrast
    clean = clean + (labels > 0) * cfg.texture * scale * tex
    clean = ndi.gaussian_filter(clean, [b / s for b, s in zip(cfg.blur_mm, cfg.spacing)])
    if ct:
        noisy = clean + cfg.noise_hu * rng.standard_normal(clean.shape, dtype=np.float32)
        return np.clip(np.rint(noisy), -1024, 3071).astype(np.int16)
    gain = np.exp(cfg.bias * _field(rng, cfg.shape, cfg.spacing, 150.0))
    sigma = cfg.noise * means[2]
    re = clean * gain + sigma * rng.standard_normal(clean.shape, dtype=np.float32)
    im = sigma * rng.standard_normal(clean.shape, dtype=np.float32)
    return np.sqrt(re * re + im * im).astype(np.float32)  # magnitude image: Rician noise


def synth_phantom(seed: int, config: PhantomConfig = PhantomConfig()) -> Phantom:
    """Draw one abdomen-like phantom volume with its tissue-class map.

    Parameters
    ----------
    seed : int
        Same seed and config, same phantom.
    config : PhantomConfig
        Size, spacing, modality and the ranges the anatomy draws from.

    Returns
    -------
    Phantom
        ``image`` (float32 for MR, int16 Hounsfield units for CT), ``labels`` (uint8 classes,
        0 = background), ``classes``, ``spacing`` and ``affine`` (voxel -> mm).

    Raises
    ------
    ValueError
        If the modality is not "MR" or "CT", or the shape is not three positive sizes.
    """
    if config.modality not in ("MR", "CT"):
        raise ValueError(f'modality must be "MR" or "CT", not {config.modality!r}')
    if len(config.shape) != 3 or min(config.shape) < 1 or len(config.spacing) != 3:
        raise ValueError(f"shape and spacing must have three (z, y, x) entries, got {config.shape}, {config.spacing}")
    rng = np.random.default_rng(seed)
    labels = _anatomy(rng, config)
    image = _render(rng, config, labels)
    affine = np.diag([*map(float, config.spacing), 1.0])
    return Phantom(image, labels, dict(CLASSES), tuple(map(float, config.spacing)), affine)
