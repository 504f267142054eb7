"""3D objects in generated confocal-like volumes: 3D AP@0.5/0.75 by route, and the time each takes.

    bash run.sh bench bench_volumes [--n 20] [--seed 5000] [--model FILE] [--model3d FILE] [--only-3d]
        [--routes model3d,2d,2d-xy,planes,classical] [--write-docs]

Routes, all with the shipped 2D nuclei model unless said:
- 3D from 2D: ``segment(volume, axes="ZYX", spacing=...)``: plane probabilities, a volume-wide
  normalisation, 3D seeded watershed over physical distance (one id through its planes). Near-
  isotropic volumes (Z spacing within 1.5x the in-plane spacing) average in the ZY and ZX planes'
  probabilities by default; the XY-only variant (``orientations=False``) is scored beside it.
  ``--near-isotropic`` draws every volume's Z spacing at 1-1.5x the in-plane spacing.
- plane by plane: ``segment(volume)`` as before axes existed: 2D objects per plane, each its own id
  (what a user got for a Z stack), scored in 3D as it is.
- 3D model (route 3): ``segment(volume, model3d, axes="ZYX", spacing=...)`` with a 3D network
  (``--model3d``, e.g. from scripts/train_nuclei3d.py; the shipped one by default, when the
  package has it): the volume resampled along Z to the
  spacing it learnt at, 3D tiles, the same 3D seeded watershed.
- classical 3D: Gaussian smoothing, Otsu threshold, 3D watershed on the physical distance
  transform from its local maxima (the field's usual baseline).
Matching is one-to-one by 3D IoU (napari_unet.training.metrics works on any dimension).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from _docs import cpu_description, write_section
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.filters import threshold_otsu
from skimage.segmentation import watershed

from napari_unet import load_model, segment
from napari_unet.model.files import VOLUME_MODEL
from napari_unet.synth.volumes import VolumeConfig, synth_volumes
from napari_unet.training.metrics import average_precision


def classical_3d(volume: np.ndarray, spacing) -> np.ndarray:
    """Otsu on a smoothed volume, split by a watershed from the maxima of the physical distance."""
    smooth = ndi.gaussian_filter(volume.astype(np.float32), sigma=[1.0 / s * min(spacing) for s in spacing])
    foreground = smooth > threshold_otsu(smooth)
    distance = ndi.distance_transform_edt(foreground, sampling=spacing)
    peaks = peak_local_max(distance, min_distance=2, labels=ndi.label(foreground)[0], exclude_border=False)
    markers = np.zeros(volume.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return watershed(-distance, markers, mask=foreground).astype(np.int32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="held-out volumes (default 20)")
    parser.add_argument("--seed", type=int, default=5000, help="seed of the held-out volumes (default 5000)")
    parser.add_argument("--near-isotropic", action="store_true", help="Z spacing 1-1.5x the in-plane spacing")
    parser.add_argument("--only-3d", action="store_true", help="only the 3D-model and the two 3D-from-2D routes")
    parser.add_argument("--write-docs", action="store_true", help="write the section of docs/benchmarks.md")
    parser.add_argument("--model", help="a 2D model file for the 3D-from-2D routes (default: the shipped one)")
    parser.add_argument("--model3d", help="a 3D model file for the route (3) row (default: the shipped one, if any)")
    parser.add_argument("--routes", help="comma-separated routes to score (model3d, 2d, 2d-xy, planes, classical; "
                                         "default: all there are)")
    args = parser.parse_args()
    model = load_model(args.model)
    args.model3d = args.model3d or (str(VOLUME_MODEL) if VOLUME_MODEL.exists() else None)
    model3d = load_model(args.model3d) if args.model3d else None
    config = VolumeConfig(z_ratio=(1.0, 1.5)) if args.near_isotropic else VolumeConfig()
    volumes = synth_volumes(args.n, args.seed, config=config)
    routes = {
        "model3d": (f"3D model ({model3d.card.name}, route 3)" if model3d is not None else None,
                    lambda v: segment(v.image, model3d, axes="ZYX", spacing=v.spacing, device="cpu")),
        "2d": ("3D from 2D (axes=ZYX, spacing)",
               lambda v: segment(v.image, model, axes="ZYX", spacing=v.spacing, device="cpu")),
        "2d-xy": ("3D from 2D, XY planes only (orientations=False)",
                  lambda v: segment(v.image, model, axes="ZYX", spacing=v.spacing, device="cpu", orientations=False)),
        "planes": ("plane by plane (no axes)", lambda v: segment(v.image, model, device="cpu")),
        "classical": ("classical 3D (Otsu + distance watershed)", lambda v: classical_3d(v.image, v.spacing)),
    }
    chosen = args.routes.split(",") if args.routes else ["model3d", "2d", "2d-xy"] if args.only_3d else list(routes)
    unknown = sorted(set(chosen) - set(routes))
    if unknown:
        parser.error(f"unknown routes {unknown}; choose from {', '.join(routes)}")
    routes = dict(routes[key] for key in chosen if routes[key][0] is not None)
    rows = []
    for name, route in routes.items():
        scores, seconds = [], 0.0
        for v in volumes:
            start = time.perf_counter()
            labels = route(v)
            seconds += time.perf_counter() - start
            scores.append(average_precision(v.labels, labels, (0.5, 0.75)))
        ap50, ap75 = np.mean(scores, axis=0)
        rows.append(f"| {name} | {ap50:.3f} | {ap75:.3f} | {seconds / len(volumes):.2f} s |")
        print(rows[-1], flush=True)
    shape = volumes[0].image.shape
    spacings = np.array([v.spacing for v in volumes])
    ratio = spacings[:, 0] / spacings[:, 1]
    body = "\n".join([
        f"`bash run.sh bench bench_volumes --n {args.n} --seed {args.seed}"
        f"{' --near-isotropic' if args.near_isotropic else ''}"
        f"{f' --model3d {args.model3d}' if args.model3d else ''}{f' --routes {args.routes}' if args.routes else ''}"
        f"{' --only-3d' if args.only_3d else ''}` (benchmarks/bench_volumes.py): "
        f"{args.n} generated confocal-like volumes of {shape[0]}×{shape[1]}×{shape[2]} voxels "
        f"(napari_unet.synth.volumes, seed {args.seed}; Z spacing {ratio.min():.1f}–{ratio.max():.1f}× the "
        "in-plane spacing), the shipped 2D nuclei model, 3D AP (one-to-one matching by 3D IoU).",
        f"Machine: {cpu_description()}, torch on the CPU; load average {os.getloadavg()[0]:.1f} at the end.",
        "",
        "| route | AP@0.5 | AP@0.75 | time per volume |",
        "|---|---|---|---|",
        *rows,
    ])
    print(body)
    if args.write_docs:
        write_section("3D objects in volumes", body)


if __name__ == "__main__":
    main()
