"""The classical baseline: smoothing, Otsu, distance-transform seeded watershed.

This is what a careful image analyst does without a network (the CellProfiler /
scikit-image recipe), with its few scales set from the image itself. The U-Net must
beat it clearly. Run ``python benchmarks/classical.py`` to print its accuracy on a
held-out synthetic set.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.filters import threshold_otsu
from skimage.segmentation import watershed


def _normalise(image: np.ndarray) -> np.ndarray:
    """Float image scaled so its 1st-99.8th percentiles span 0-1 (grayscale if RGB)."""
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 3 and img.shape[-1] in (3, 4):
        img = img[..., :3].mean(-1)
    if img.ndim != 2:
        raise ValueError(f"expected a 2D grayscale or RGB image, got shape {np.shape(image)}")
    lo, hi = np.percentile(img, (1, 99.8))
    return (img - lo) / max(hi - lo, 1e-6)


def classical_segment(
    image: np.ndarray, sigma: float = 1.0, min_size: int | None = None
) -> np.ndarray:
    """Segment nuclei with Otsu's threshold and a seeded watershed on the distance map.

    Parameters
    ----------
    image : numpy.ndarray
        2D fluorescence image (any dtype; RGB is averaged to gray).
    sigma : float
        Gaussian smoothing before thresholding, px.
    min_size : int, optional
        Smallest object kept, px; default a tenth of the median object area (at least 6).

    Returns
    -------
    numpy.ndarray
        int32 instance labels, 0 = background.
    """
    smooth = ndi.gaussian_filter(_normalise(image), sigma)
    if np.ptp(smooth) < 1e-6:
        return np.zeros(smooth.shape, np.int32)
    blobs, n = ndi.label(ndi.binary_fill_holes(smooth > threshold_otsu(smooth)))
    blobs = _drop_small(blobs, 6)
    mask = blobs > 0
    if not mask.any():
        return np.zeros(mask.shape, np.int32)
    # the typical nucleus radius, from the median blob (clusters are the minority)
    radius = max(1.5, float(np.sqrt(np.median(np.bincount(blobs.ravel())[1:]) / np.pi)))
    dist = ndi.gaussian_filter(ndi.distance_transform_edt(mask), max(0.5, 0.2 * radius))
    peaks = peak_local_max(
        dist, min_distance=max(2, round(0.6 * radius)), labels=blobs, exclude_border=False
    )
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    labels = watershed(-dist, markers, mask=mask)
    min_size = max(6, round(0.1 * np.pi * radius**2)) if min_size is None else min_size
    labels = _drop_small(labels, min_size)
    # blobs that got no seed keep their own label rather than vanishing
    unseeded = mask & (labels == 0) & ~np.isin(blobs, np.unique(blobs[labels > 0]))
    extra, _ = ndi.label(unseeded)
    labels = np.where(extra > 0, extra + labels.max(), labels)
    return _consecutive(_drop_small(labels, min_size))


def _drop_small(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Set objects with fewer than ``min_size`` pixels to background."""
    small = np.bincount(labels.ravel()) < min_size
    small[0] = False
    return np.where(small[labels], 0, labels)


def _consecutive(labels: np.ndarray) -> np.ndarray:
    ids = np.unique(labels)
    lut = np.zeros(int(ids.max()) + 1, np.int32)
    lut[ids[ids > 0]] = np.arange(1, int((ids > 0).sum()) + 1)
    return lut[labels]


def main(argv: list[str] | None = None) -> None:
    """Print the baseline's mean AP on a held-out synthetic set."""
    from napari_unet.synth.images import synth_dataset
    from napari_unet.training.metrics import mean_average_precision

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="number of images")
    parser.add_argument("--seed", type=int, default=12345, help="held-out seed")
    parser.add_argument("--size", type=int, default=256, help="image side, px")
    args = parser.parse_args(argv)
    samples = synth_dataset(args.n, args.seed, (args.size, args.size))
    start = time.perf_counter()
    preds = [classical_segment(s.image) for s in samples]
    took = (time.perf_counter() - start) / args.n
    ap = mean_average_precision([s.labels for s in samples], preds, (0.5, 0.75))
    size = f"{args.size}x{args.size}"
    print(f"classical baseline on {args.n} synthetic images {size} (seed {args.seed})")
    print(f"AP@0.5 = {ap[0]:.3f}   AP@0.75 = {ap[1]:.3f}   ({1000 * took:.0f} ms per image)")


if __name__ == "__main__":
    main()
