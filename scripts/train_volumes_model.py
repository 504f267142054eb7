"""Fine-tune the shipped 2D nuclei model on the XY planes of generated confocal-like volumes.

    .venv/bin/python scripts/train_volumes_model.py OUT.safetensors [--minutes 15] [--volumes 24]
        [--lr 5e-4] [--seed 777] [--init MODEL]

Each volume (napari_unet.synth.volumes; seeds apart from bench_volumes' held-out 5000 and
6000) is resampled in-plane to the zoom automatic zoom picks for its nuclei, as ``segment``
will see it, and its planes train the network (8 patches of 128², a CPU-second budget per
torch thread); the card keeps automatic zoom. Score the result with
``benchmarks/bench_volumes.py --model OUT.safetensors``. An experiment for issue 16's 3D
objects from a 2D network, not (yet) a shipped model: docs/benchmarks.md has its figures.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import torch

from napari_unet import load_model, save_model
from napari_unet.inference.zoom import labels_to_shape, resample, training_zoom, zoomed_shape
from napari_unet.progress import run
from napari_unet.synth.volumes import synth_volumes
from napari_unet.training.engine import TrainConfig, train_iter
from napari_unet.training.sources import ArraySource


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--minutes", type=float, default=15.0, help="CPU minutes per torch thread")
    parser.add_argument("--volumes", type=int, default=24)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--seed", type=int, default=777, help="seed of the training volumes")
    parser.add_argument("--init", help="model to start from (default: the shipped one)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.init)
    card = model.card
    planes, objects, masks = [], [], []
    for volume in synth_volumes(args.volumes, args.seed):
        zoom = training_zoom([volume.labels])
        for image, labels in zip(volume.image.astype(np.float32), volume.labels):
            if labels.any():
                shape = zoomed_shape(image.shape, zoom)
                planes.append(resample(image[None], shape)[0])
                objects.append(labels_to_shape(labels, shape))
                masks.append(np.ones(shape, bool))
    print(f"{len(planes)} planes of {args.volumes} volumes", flush=True)
    config = TrainConfig(steps=1_000_000, max_seconds=60 * args.minutes, clock="cpu", patch_size=128, batch_size=8,
                         lr=args.lr, warmup_steps=20, val_every=0, seed=0)
    start = time.perf_counter()
    result = run(train_iter(model, ArraySource(planes, objects, masks, normalization=card.normalization), config,
                            device="cpu"))
    model.card = replace(card, name="nuclei-volumes", provenance={
        "steps": result.steps, "planes": len(planes), "volumes": args.volumes, "seed": args.seed,
        "init": card.name, "init_provenance": card.provenance})
    save_model(model, args.out)
    print(f"{result.steps} steps, {time.perf_counter() - start:.0f} s wall -> {args.out}")


if __name__ == "__main__":
    main()
