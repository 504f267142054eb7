"""What a synthetic image may look like: the ranges each image draws its parameters from."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

Range = tuple[float, float]


def uniform(rng: np.random.Generator, r: Range, n: int | None = None) -> np.ndarray | float:
    """Uniform in ``r`` (``n`` values, or one)."""
    return rng.uniform(r[0], r[1], n)


def uniform_low(rng: np.random.Generator, r: Range) -> float:
    """Uniform in ``r`` after squaring: low values common, high ones still drawn."""
    return r[0] + (r[1] - r[0]) * rng.random() ** 2


def log_uniform(rng: np.random.Generator, r: Range) -> float:
    """Log-uniform in ``r``."""
    return float(np.exp(rng.uniform(np.log(r[0]), np.log(r[1]))))



@dataclass(frozen=True)
class SynthConfig:
    """Ranges from which each image draws its parameters (uniformly unless noted)."""

    size: Range = (5.0, 60.0)  # typical nucleus diameter of an image, px (log-uniform)
    size_spread: Range = (0.06, 0.3)  # lognormal sigma of object diameters around it
    elongation: Range = (0.05, 0.6)  # sigma of |N(0, s)| added to 1: per-object aspect
    wobble: Range = (0.0, 0.12)  # amplitude of radial Fourier wobble of the border
    p_dividing: Range = (0.0, 0.05)  # fractions of peanuts, of daughter pairs, of metaphase bars
    p_aligned: float = 0.3  # probability that neighbours share an orientation (confluent)
    p_bean: Range = (0.0, 0.15)  # fraction of bent, kidney-shaped nuclei
    coverage: Range = (0.03, 0.45)  # fraction of the image covered by nuclei (log-uniform)
    p_clustered: float = 0.5  # probability that nuclei gather in clusters, not uniformly
    packing: Range = (0.72, 1.0)  # closest approach, in sums of radii facing each other (1 = touch)
    min_visible: float = 0.6  # drop nuclei with less of their in-image area left visible
    min_area: int = 6  # drop nuclei with fewer visible pixels
    brightness_spread: Range = (0.05, 0.5)  # lognormal sigma of per-nucleus brightness
    p_squeezed: float = 0.5  # probability that touching nuclei press flat, not overlap
    overlap_gain: Range = (0.0, 0.6)  # how much a hidden nucleus adds to the one above it
    dome: Range = (0.0, 0.8)  # border darkening of a dome-shaped (projected ellipsoid) nucleus
    rim: Range = (0.0, 0.4)  # upper bound of the bright nuclear-envelope rim
    tilt: Range = (0.0, 0.25)  # upper bound of a linear intensity slope across a nucleus
    texture: Range = (0.0, 0.3)  # amplitude of smooth interior texture (std, relative)
    speckle: Range = (0.0, 0.25)  # amplitude of fine chromatin speckle (std, relative)
    spots: Range = (0.0, 0.7)  # depth of dark nucleoli and height of bright chromocentres
    p_out_of_focus: Range = (0.0, 0.2)  # fraction of nuclei out of focus (dimmer, blurred)
    defocus: Range = (0.8, 2.5)  # their extra blur sigma, px (at most 0.2 x diameter)
    defocus_dim: Range = (0.4, 0.75)  # their brightness factor
    psf_sigma: Range = (0.4, 2.0)  # Gaussian PSF sigma, px (at most 0.15 x diameter)
    background: Range = (0.0, 0.2)  # background offset, relative to bright nuclei (= 1)
    haze: Range = (0.0, 0.12)  # amplitude of smooth autofluorescence
    blobs: Range = (0.0, 0.25)  # peak of large, unlabelled, far-out-of-focus blobs
    vignetting: Range = (0.0, 0.45)  # relative illumination loss at the far corner
    gradient: Range = (0.0, 0.3)  # relative linear illumination change across the image
    photons: Range = (20.0, 5000.0)  # photoelectrons at bright nuclei (log-uniform)
    read_noise: Range = (0.5, 3.0)  # camera read noise, electrons
    fill: Range = (0.08, 1.4)  # bright nuclei as a fraction of full scale, >1 saturates
    # probabilities of uint8, uint16 with 12-bit range, uint16 with 16-bit range, float32
    dtype_weights: tuple[float, float, float, float] = (0.4, 0.25, 0.15, 0.2)
    max_objects: int = 4000  # cap on drawn candidates, for speed on large images

    def shifted(self) -> SynthConfig:
        """A domain-shifted variant: much bigger nuclei, low contrast, strong texture."""
        return replace(
            self, size=(45.0, 90.0), size_spread=(0.05, 0.15), coverage=(0.1, 0.35),
            background=(1.0, 2.5), haze=(0.2, 0.4), texture=(0.3, 0.45),
            speckle=(0.25, 0.4), spots=(0.6, 0.9), dome=(0.0, 0.2), psf_sigma=(0.8, 2.0),
        )  # fmt: skip
