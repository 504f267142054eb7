"""Inference speed and memory on this machine: prints figures and ratios (no assertions).

    bash run.sh bench bench_predict            # CPU, all cores
    bash run.sh bench bench_predict --device cuda

Reports: fp32 matmul GFLOP/s; the U-Net's forward GFLOP/s on 512² tiles as a share of
it; end-to-end tiled prediction of a 2048² uint16 image against the forward passes
alone over the same tiles; instance post-processing separately; MONAI's
sliding_window_inference on the same network and image (if MONAI is installed);
peak memory for a 4096² image (in a fresh process); the seed configuration's throughput.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numpy as np
import torch
from _docs import cpu_description
from torch.utils.flop_counter import FlopCounterMode

from napari_unet import UNet, instances_from_probabilities, predict
from napari_unet.devices import resolve_device
from napari_unet.inference.tiling import tile_slices


def best_of(fn, repeat: int = 3) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def matmul_gflops(dev) -> float:
    n = 4096 if dev.type == "cuda" else 2048
    a = torch.randn(n, n, device=dev)

    def run():
        for _ in range(5):
            a @ a
        sync(dev)

    return 5 * 2 * n**3 / best_of(run) / 1e9


def forward_flops(model, x) -> int:
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(x)
    return counter.get_total_flops()


def forward_gflops(model, dev, size=512, batch=1, dtype=None) -> tuple[float, float]:
    model = model.to(dev, memory_format=torch.channels_last).eval()
    x = torch.randn(batch, model.config.in_channels, size, size, device=dev)
    x = x.contiguous(memory_format=torch.channels_last)
    flops = forward_flops(model, x)
    amp = dtype is not None

    def run():
        with torch.inference_mode(), torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=amp):
            model(x)
        sync(dev)

    seconds = best_of(run)
    return flops / seconds / 1e9, seconds


def peak_memory_child(base: int, device: str) -> None:
    """Run in a fresh process: RSS before and after segmenting a 4096² uint16 image."""
    model = UNet(1, 3, base_channels=base).eval()
    image = np.random.default_rng(0).integers(0, 60000, (4096, 4096), dtype=np.uint16)
    before = _status_mb("VmRSS")  # resident now, the image included
    probs = predict(image, model, device=device)
    instances_from_probabilities(probs)
    print(f"{_status_mb('VmHWM') - before:.0f}")  # the high-water mark since the process began


def _status_mb(field: str) -> float:
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--base", type=int, default=32)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    dev = resolve_device(args.device)
    if args.memory_child:
        return peak_memory_child(args.base, args.device)

    print(f"machine: {cpu_description()}, {torch.get_num_threads()} torch threads, "
          f"device {dev}" + (f" ({torch.cuda.get_device_name()})" if dev.type == "cuda" else ""))
    print(f"torch {torch.__version__}")
    mm = matmul_gflops(dev)
    print(f"fp32 matmul: {mm:.0f} GFLOP/s")

    for base in (16, 24, 32):
        rate, sec = forward_gflops(UNet(1, 3, base_channels=base), dev)
        print(f"forward base {base:2d} on 512²: {sec * 1e3:6.1f} ms, {rate:.0f} GFLOP/s = {rate / mm:.0%} of matmul")
    if dev.type == "cuda":
        for base in (16, 32):
            rate, sec = forward_gflops(UNet(1, 3, base_channels=base), dev, batch=16, dtype=torch.bfloat16)
            print(f"forward base {base} bf16, 16×512²: {16 * 512 * 512 / sec / 1e6:.0f} Mpx/s ({rate / 1e3:.1f} TFLOP/s)")

    # end to end vs forward passes alone, over the same tiles
    model = UNet(1, 3, base_channels=args.base).to(dev, memory_format=torch.channels_last).eval()
    image = np.random.default_rng(0).integers(0, 60000, (args.size, args.size)).astype(np.uint16)
    tiles = tile_slices(image.shape, 512, 0.25)
    batch = 4 if dev.type != "cpu" else 1
    x = torch.randn(batch, 1, 512, 512, device=dev).contiguous(memory_format=torch.channels_last)
    amp = dev.type == "cuda"

    def forward_only():
        for _ in range(0, len(tiles), batch):
            with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                model(x)
        sync(dev)

    t_fwd = best_of(forward_only, repeat=2)
    t_pred = best_of(lambda: predict(image, model, device=dev), repeat=2)
    probs = predict(image, model, device=dev)
    t_inst = best_of(lambda: instances_from_probabilities(probs), repeat=2)
    print(f"{args.size}² uint16, base {args.base}, {len(tiles)} tiles of 512² (overlap 0.25):")
    print(f"  forward passes alone {t_fwd:.2f} s; predict() end to end {t_pred:.2f} s "
          f"-> ratio {t_pred / t_fwd:.3f} (target <= 1.15)")
    print(f"  instance post-processing {t_inst:.2f} s (random weights: few objects; see bench_ui for real masks)")
    print(f"  throughput {args.size**2 / t_pred / 1e6:.2f} Mpx/s")

    try:
        from monai.inferers import sliding_window_inference
    except ImportError:
        print("MONAI not installed (pip install '.[bench]'): peer comparison skipped")
    else:
        from napari_unet.inference.images import normalize

        def monai_run():
            xt = torch.from_numpy(normalize(image))[None, None].to(dev)
            with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                out = sliding_window_inference(xt, (512, 512), batch, model, overlap=0.25, mode="gaussian")
                torch.softmax(out.float(), 1).cpu().numpy()

        t_monai = best_of(monai_run, repeat=2)
        print(f"  MONAI sliding_window_inference (gaussian, overlap 0.25): {t_monai:.2f} s "
              f"-> napari-unet is {t_monai / t_pred:.2f}x its speed")

    peak = subprocess.run(
        [sys.executable, __file__, "--memory-child", "--base", str(args.base), "--device", args.device],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    print(f"peak memory above baseline, 4096² uint16 predict + instances: {peak} MB (target <= 1500)")

    seed = UNet(3, 2, base_channels=64, depth=4, norm=None)
    rate, sec = forward_gflops(seed, dev)
    print(f"seed configuration (article, 31.0 M params) on 512²: {sec * 1e3:.0f} ms, {rate:.0f} GFLOP/s")


if __name__ == "__main__":
    main()
