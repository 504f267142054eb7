"""A model's accuracy on a held-out synthetic set, next to the classical baseline.

    bash run.sh bench eval_model                       # the shipped nuclei model
    bash run.sh bench eval_model --model m.safetensors --n 50 --seed 12345
    bash run.sh bench eval_model --tta                 # test-time augmentation (8 views)

Prints AP@0.5 and AP@0.75 (matched instances, TP / (TP + FP + FN), mean over images)
on ``--n`` generated images drawn from the generator's widest ranges (and, with
``--shifted``, its domain-shifted variant), the classical pipeline's figures on the
same images, and the end-to-end time of ``segment`` on a 512² image.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from classical import classical_segment

from napari_unet.inference.segment import segment
from napari_unet.model.files import load_model
from napari_unet.synth.config import SynthConfig
from napari_unet.synth.images import synth_dataset, synth_image
from napari_unet.training.metrics import mean_average_precision


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model file (default: the shipped nuclei model)")
    parser.add_argument("--n", type=int, default=50, help="number of images (default 50)")
    parser.add_argument("--seed", type=int, default=12345, help="held-out seed (default 12345)")
    parser.add_argument("--size", type=int, default=256, help="image side, px (default 256)")
    parser.add_argument("--shifted", action="store_true", help="use SynthConfig().shifted()")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--tta", action="store_true", help="segment with test-time augmentation (8 views)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(args.model)
    config = SynthConfig().shifted() if args.shifted else SynthConfig()
    samples = synth_dataset(args.n, args.seed, (args.size, args.size), config)
    trues = [s.labels for s in samples]
    start = time.perf_counter()
    preds = [segment(s.image, model, device="cpu", tta=args.tta) for s in samples]
    per_image = (time.perf_counter() - start) / args.n
    ap = mean_average_precision(trues, preds, (0.5, 0.75))
    base = mean_average_precision(trues, [classical_segment(s.image) for s in samples], (0.5, 0.75))
    big = synth_image(np.random.default_rng(args.seed + 1), (512, 512), config).image
    segment(big, model, device="cpu", tta=args.tta)  # warm-up
    times = []
    for _ in range(5):
        t = time.perf_counter()
        segment(big, model, device="cpu", tta=args.tta)
        times.append(time.perf_counter() - t)
    kind = ("shifted" if args.shifted else "default") + (" ranges, test-time augmentation" if args.tta else " ranges")
    print(f"{args.model or 'shipped nuclei model'}; {args.n} synthetic images {args.size}² "
          f"({kind}, seed {args.seed}); torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"U-Net     AP@0.5 = {ap[0]:.3f}   AP@0.75 = {ap[1]:.3f}   ({1000 * per_image:.0f} ms per image)")
    print(f"classical AP@0.5 = {base[0]:.3f}   AP@0.75 = {base[1]:.3f}")
    print(f"segment 512² end to end: median {np.median(times):.3f} s, best {min(times):.3f} s")


if __name__ == "__main__":
    main()
