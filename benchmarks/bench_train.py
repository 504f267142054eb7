"""Training-step speed against the work it does: prints figures and the ratio (no assertions).

    bash run.sh bench bench_train                 # CPU, all cores, 4 x 256², base 32
    bash run.sh bench bench_train --base 24 --batch 4 --size 192

Counts the forward + backward FLOPs of one step with torch.utils.flop_counter,
converts them to time at this machine's measured fp32 matmul rate, and compares the
measured step (forward, loss, backward, AdamW update) with it. Target: ratio <= 2.
Also times making a batch (synthetic image, augmentation, targets) separately, fresh
and from a recycled pool, since that runs in the same thread.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from bench_predict import best_of, matmul_gflops  # same matmul measurement as the predict benchmark
from torch.utils.flop_counter import FlopCounterMode

from napari_unet import UNet
from napari_unet.training.batches import PatchSampler
from napari_unet.training.engine import TrainConfig
from napari_unet.training.losses import segmentation_loss
from napari_unet.training.sources import SynthSource


def step_flops(model, batch) -> int:
    with FlopCounterMode(display=False) as counter:
        loss = segmentation_loss(model(batch.images), batch.classes, batch.weights)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=32)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device("cpu")
    torch.manual_seed(0)
    cfg = TrainConfig(batch_size=args.batch, patch_size=args.size)
    side = int(round(args.size / cfg.augment.scale[0])) + 1
    rng = np.random.default_rng(0)
    fresh = PatchSampler(SynthSource(shape=(side, side)), args.size, args.batch, rng=rng)
    pooled = PatchSampler(SynthSource(shape=(side, side), pool=16), args.size, args.batch, rng=rng)
    batch = fresh()

    model = UNet(1, 3, base_channels=args.base, depth=args.depth).to(memory_format=torch.channels_last)
    model.train()
    images = batch.images.contiguous(memory_format=torch.channels_last)
    batch = type(batch)(images, batch.classes, batch.weights)
    flops = step_flops(model, batch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        loss = segmentation_loss(model(batch.images), batch.classes, batch.weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def fwd_bwd():
        loss = segmentation_loss(model(batch.images), batch.classes, batch.weights)
        loss.backward()
        model.zero_grad(set_to_none=True)

    rate = matmul_gflops(dev)
    t_step = best_of(step, args.repeat)
    t_fb = best_of(fwd_bwd, args.repeat)
    t_fresh = best_of(fresh, args.repeat)
    t_pool = best_of(pooled, args.repeat)
    ideal = flops / (rate * 1e9)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, fp32, channels_last")
    print(f"network: base {args.base}, depth {args.depth}; batch {args.batch} x {args.size}²")
    print(f"fp32 matmul rate            {rate:8.1f} GFLOP/s")
    print(f"forward+backward FLOPs      {flops / 1e9:8.1f} GFLOP  -> {ideal:.3f} s at the matmul rate")
    print(f"measured forward+backward   {t_fb:8.3f} s   ratio {t_fb / ideal:.2f}")
    print(f"measured full step (+AdamW) {t_step:8.3f} s   ratio {t_step / ideal:.2f}  (target <= 2)")
    print(f"making a batch: fresh synthetic {t_fresh:.3f} s, recycled pool {t_pool:.3f} s "
          f"({t_fresh / t_step:.0%} / {t_pool / t_step:.0%} of a step)")


if __name__ == "__main__":
    main()
