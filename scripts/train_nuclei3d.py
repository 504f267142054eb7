"""Train a 3D nuclei U-Net from scratch on generated confocal-like volumes (issue 16, route 3).

    nice -n 10 .venv/bin/python scripts/train_nuclei3d.py OUT.safetensors [--minutes 45] [--volumes 96]
        [--seed 9100] [--z-ratio 1.5] [--base 16] [--depth 3] [--patch 32 64 64] [--batch 2]
    .venv/bin/python scripts/train_nuclei3d.py OUT.safetensors --tune-only   # post-processing only

Each volume (napari_unet.synth.volumes; seeds apart from bench_volumes' held-out 5000 and 6000)
is scaled to 0-1 over the whole volume (the card's percentiles, as ``segment`` scales a volume)
and resampled along Z to one target spacing, ``--z-ratio`` times the in-plane pixel, as
nnU-Net resamples to its plan's spacing; in-plane pixels are left as they are (the generated
nuclei are 8-24 px across, whatever the pixel's size in µm). Targets are the 3D classes of
:func:`~napari_unet.training.targets.make_targets` (background, interior, boundary; the
boundary band found through the planes, widened where nuclei touch, with contact weights).
Patches are mirrored along every axis, transposed in-plane and intensity-jittered.

After training, the post-processing thresholds (interior and foreground) are tuned on
``--tune-volumes`` validation volumes of their own seed (9200, apart from training and the
benchmark's) and written to the card's ``postprocess``.

The budget is CPU seconds per torch thread (``clock="cpu"``), so a run on a shared machine
learns what a dedicated one of that many cores would. The best weights by smoothed loss are
written to OUT every 100 steps (score a run in progress with ``benchmarks/bench_volumes.py
--model3d OUT``). The card says what the model is: task ``instances``, the plan's
``target_spacing`` (Z, Y, X in in-plane pixels, ``spacing_unit: "pixel"``) and how it was trained.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from napari_unet import load_model, save_model, segment_iter
from napari_unet.inference.images import normalize_stack
from napari_unet.inference.instances import model_params
from napari_unet.inference.segment import labels_from
from napari_unet.inference.zoom import along_z
from napari_unet.model.card import ModelCard
from napari_unet.model.unet import UNet, UNetConfig, plan_pools
from napari_unet.progress import run
from napari_unet.synth.volumes import SynthVolume, synth_volumes
from napari_unet.training.augment import AugmentConfig, IntensityJitter
from napari_unet.training.batches import Batch
from napari_unet.training.engine import TrainConfig, train_iter
from napari_unet.training.metrics import average_precision
from napari_unet.training.semantic import crop3d
from napari_unet.training.targets import IGNORE_INDEX, TargetConfig, make_targets

NORMALIZATION = (1.0, 99.8)  # percentiles mapped to 0 and 1 over each volume (the shipped 2D model's)


@dataclass(frozen=True)
class Volume:
    """One training volume at the target spacing: the scaled image and its 3D targets."""

    image: np.ndarray  # (1, Z, Y, X) float32, 0-1 over the volume
    classes: np.ndarray  # (Z, Y, X) int8: background, interior, boundary (int64 in batches)
    weights: np.ndarray  # (Z, Y, X) float32
    foreground: np.ndarray  # flat indices of object voxels (patch centres)


def planes_at(volume_planes: int, z_ratio: float, target_ratio: float) -> int:
    """Planes a volume of ``volume_planes`` with Z spacing ``z_ratio`` (in-plane units) has at the target."""
    return max(1, int(round(volume_planes * z_ratio / target_ratio)))


def labels_along_z(labels: np.ndarray, planes: int) -> np.ndarray:
    """Instance labels resampled along Z to ``planes`` planes, each taking the nearest plane's labels."""
    src = np.minimum(((np.arange(planes) + 0.5) * labels.shape[0] / planes).astype(int), labels.shape[0] - 1)
    return labels[src]


def prepare(volume: SynthVolume, target_ratio: float, targets: TargetConfig) -> Volume:
    """A generated volume scaled, resampled to the target Z spacing, and its targets made in 3D."""
    ratio = volume.spacing[0] / volume.spacing[2]
    planes = planes_at(volume.image.shape[0], ratio, target_ratio)
    image = along_z(normalize_stack(volume.image, None, *NORMALIZATION)[None], planes)
    labels = labels_along_z(volume.labels, planes)
    classes, weights = make_targets(labels, config=targets)
    return Volume(image.astype(np.float32, copy=False), classes.astype(np.int8), weights, np.flatnonzero(labels))


class VolumeBatches:
    """Batches of 3D patches with instance targets: centred on a nucleus (``focus``) or anywhere."""

    def __init__(self, volumes: list[Volume], patch: tuple[int, int, int], batch: int, rng: np.random.Generator,
                 focus: float = 0.67):
        self.volumes, self.patch, self.batch, self.rng, self.focus = volumes, patch, batch, rng, focus
        self.jitter = IntensityJitter(AugmentConfig())

    def one(self) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        v = self.volumes[int(self.rng.integers(len(self.volumes)))]
        shape = v.classes.shape
        if v.foreground.size and self.rng.random() < self.focus:
            centre = np.unravel_index(v.foreground[self.rng.integers(v.foreground.size)], shape)
            corner = [int(c) - s // 2 + int(self.rng.integers(-s // 4, s // 4 + 1)) for c, s in zip(centre, self.patch)]
        else:
            corner = [int(self.rng.integers(min(0, n - s), max(0, n - s) + 1)) for n, s in zip(shape, self.patch)]
        image = crop3d(v.image, corner, self.patch)
        classes = crop3d(v.classes, corner, self.patch, fill=IGNORE_INDEX)  # outside the volume: no target
        weights = crop3d(v.weights, corner, self.patch)
        for axis in range(3):
            if self.rng.random() < 0.5:
                image, classes, weights = np.flip(image, axis + 1), np.flip(classes, axis), np.flip(weights, axis)
        if self.patch[1] == self.patch[2] and self.rng.random() < 0.5:  # in-plane transpose: the 8 in-plane views
            image, classes, weights = image.swapaxes(2, 3), classes.swapaxes(1, 2), weights.swapaxes(1, 2)
        x = torch.from_numpy(np.ascontiguousarray(image))
        x = self.jitter.transform(x, self.jitter.make_params([x]))
        return x, np.ascontiguousarray(classes), np.ascontiguousarray(weights)

    def __call__(self) -> Batch:
        patches = [self.one() for _ in range(self.batch)]
        return Batch(torch.stack([p[0] for p in patches]),
                     torch.from_numpy(np.stack([p[1] for p in patches]).astype(np.int64)),
                     torch.from_numpy(np.stack([p[2] for p in patches])))


TUNE_SEED = 9200  # validation volumes for the post-processing thresholds


def tune_postprocess(model: UNet, n: int, seed: int = TUNE_SEED) -> dict:
    """The interior and foreground thresholds with the best mean 3D AP (@0.5 and @0.75) on
    ``n`` validation volumes, each predicted once and re-thresholded without the network.
    """
    kept = []
    for v in synth_volumes(n, seed):
        result = run(segment_iter(v.image, model, axes="ZYX", spacing=v.spacing, device="cpu"))
        kept.append((v, result))
    base = model_params(model.card)
    best, best_score = {}, -1.0
    for interior in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        for foreground in (0.3, 0.4, 0.5, 0.6, 0.7):
            params = replace(base, interior_threshold=interior, foreground_threshold=foreground)
            scores = [average_precision(v.labels, labels_from(r.probabilities, params, "instances", v.labels.shape,
                                                              "ZYX", v.spacing), (0.5, 0.75)) for v, r in kept]
            score = float(np.mean(scores))
            print(f"interior {interior} foreground {foreground}: AP@0.5 {np.mean(scores, axis=0)[0]:.3f} "
                  f"AP@0.75 {np.mean(scores, axis=0)[1]:.3f}", flush=True)
            if score > best_score:
                best, best_score = {"interior_threshold": interior, "foreground_threshold": foreground}, score
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--minutes", type=float, default=45.0, help="CPU minutes per torch thread")
    parser.add_argument("--volumes", type=int, default=96)
    parser.add_argument("--seed", type=int, default=9100, help="seed of the training volumes")
    parser.add_argument("--z-ratio", type=float, default=1.5, help="target Z spacing, in in-plane pixels")
    parser.add_argument("--base", type=int, default=16, help="base channels")
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--patch", type=int, nargs=3, default=(32, 64, 64), metavar=("Z", "Y", "X"))
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tune-volumes", type=int, default=8, help="validation volumes for the thresholds")
    parser.add_argument("--tune-only", action="store_true", help="tune OUT's post-processing, no training")
    parser.add_argument("--resume", action="store_true",
                        help="continue OUT's run from its resume state (a new --minutes reshapes the schedule)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.tune_only:
        tune_and_save(load_model(args.out), args)
        return
    start = time.perf_counter()
    targets = TargetConfig()
    volumes = [prepare(v, args.z_ratio, targets) for v in synth_volumes(args.volumes, args.seed)]
    print(f"{len(volumes)} volumes ({sum(v.classes.size for v in volumes) / 1e6:.0f} M voxels at Z "
          f"{args.z_ratio:g} px) in {time.perf_counter() - start:.0f} s", flush=True)
    spacing = (args.z_ratio, 1.0, 1.0)
    config = UNetConfig(in_channels=1, out_channels=3, base_channels=args.base, depth=args.depth, spatial_dims=3,
                        pools=plan_pools(spacing, args.depth))
    model = UNet.from_config(config)
    model.card = ModelCard(
        name="nuclei-3d", task="instances", normalization=NORMALIZATION,
        postprocess={"min_size": 10, "min_relative_size": 0.15},
        plan={"spatial_dims": 3, "target_spacing": list(spacing), "spacing_unit": "pixel",
              "patch_size": list(args.patch), "batch_size": args.batch},
        provenance={"data": "napari_unet.synth.volumes", "volumes": args.volumes, "seed": args.seed,
                    "script": "scripts/train_nuclei3d.py", "budget_cpu_minutes_per_thread": args.minutes,
                    "threads": args.threads})
    train = TrainConfig(steps=10_000_000, max_seconds=60 * args.minutes, clock="cpu", batch_size=args.batch,
                        lr=args.lr, val_every=100, seed=0, checkpoint=args.out, targets=targets,
                        resume=args.out if args.resume else None)
    job = train_iter(model, None, train, device="cpu",
                     batches=lambda _data, _config, rng: VolumeBatches(volumes, tuple(args.patch), args.batch, rng))
    ema = None
    while True:
        try:
            p = next(job)
        except StopIteration as done:
            result = done.value
            break
        ema = p.loss if ema is None else 0.98 * ema + 0.02 * p.loss
        if p.step % 25 == 0 or p.step <= 3:
            print(f"step {p.step} loss {p.loss:.3f} ema {ema:.3f} lr {p.lr:.2e} cpu {p.seconds:.0f} s "
                  f"wall {time.perf_counter() - start:.0f} s", flush=True)
    model.card = replace(model.card, provenance={**model.card.provenance, "steps": result.steps,
                                                 "best_step": result.best_step,
                                                 "cpu_seconds_per_thread": round(result.seconds)})
    save_model(result.model, args.out)
    print(f"{result.steps} steps (best {result.best_step}), {time.perf_counter() - start:.0f} s wall -> {args.out}")
    tune_and_save(result.model, args)


def tune_and_save(model: UNet, args) -> None:
    """Tune ``model``'s post-processing and write it to ``args.out`` with the thresholds in its card."""
    if not args.tune_volumes:
        return
    best = tune_postprocess(model, args.tune_volumes)
    model.card = replace(model.card, postprocess={**model.card.postprocess, **best},
                         provenance={**model.card.provenance, "postprocess_tuned_on":
                                     f"{args.tune_volumes} volumes, seed {TUNE_SEED}"})
    save_model(model, args.out)
    print(f"post-processing {best} -> {args.out}")


if __name__ == "__main__":
    main()
