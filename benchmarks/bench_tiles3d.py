"""3D tiled prediction against MONAI's sliding_window_inference (Gaussian blend), same network,
same volume, same tiles, in one run: time and agreement.

    bash run.sh bench bench_tiles3d [--shape 48 192 192] [--tile 32 128 128] [--repeats 6] [--write-docs]

Both get the same normalised float32 volume (``predict_iter(..., normalized=True)``; MONAI gets
it as a tensor) and the same 3D U-Net (random weights: time does not depend on them), tiles
overlapping by 0.25, batch 1, on the CPU. Runs alternate in balanced pairs (ours, MONAI, MONAI,
ours, ...) so that load from other jobs, and whatever the run before leaves in caches, hits both
alike; the median of each is reported, wall time and the process's CPU time. MONAI is the ``bench`` extra
(``pip install 'napari-unet[bench]'``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
from _docs import cpu_description, write_section
from monai.inferers import sliding_window_inference

from napari_unet.inference.predict import predict_iter
from napari_unet.model.unet import UNet, plan_pools
from napari_unet.progress import run


def ours(volume: np.ndarray, net: UNet, tile, overlap: float) -> np.ndarray:
    return run(predict_iter(volume, net, tile_size=tile, overlap=overlap, normalized=True, device="cpu"))


def monai(volume: np.ndarray, net: UNet, tile, overlap: float) -> np.ndarray:
    x = torch.from_numpy(volume)[None, None]
    with torch.inference_mode():
        out = sliding_window_inference(x, roi_size=tile, sw_batch_size=1, overlap=overlap, mode="gaussian",
                                       predictor=lambda t: torch.softmax(net(t), dim=1))
    return out[0].numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=3, default=(48, 192, 192))
    ap.add_argument("--tile", type=int, nargs=3, default=(32, 128, 128))
    ap.add_argument("--spacing", type=float, nargs=3, default=(2.0, 1.0, 1.0))
    ap.add_argument("--base-channels", type=int, default=16)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=6)
    ap.add_argument("--write-docs", action="store_true")
    args = ap.parse_args()
    torch.manual_seed(0)
    net = UNet(1, 3, base_channels=args.base_channels, depth=args.depth, spatial_dims=3,
               pools=plan_pools(tuple(args.spacing), args.depth)).eval()
    volume = np.random.default_rng(0).random(tuple(args.shape)).astype(np.float32)
    tile, overlap = tuple(args.tile), 0.25
    a, b = ours(volume, net, tile, overlap), monai(volume, net, tile, overlap)  # warm-up, and agreement
    diff = float(np.abs(a - b).max())
    same = float((a.argmax(0) == b.argmax(0)).mean())
    times = {"ours": [], "monai": []}
    cpu = {"ours": [], "monai": []}
    order = [("ours", ours), ("monai", monai)]
    for r in range(args.repeats):
        for name, fn in order if r % 2 == 0 else order[::-1]:
            t, c = time.perf_counter(), time.process_time()
            fn(volume, net, tile, overlap)
            times[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
    t_ours, t_monai = (statistics.median(times[k]) for k in ("ours", "monai"))
    c_ours, c_monai = (statistics.median(cpu[k]) for k in ("ours", "monai"))
    load = os.getloadavg()[0]
    print(f"volume {args.shape}, tile {tile}, 3D U-Net base {args.base_channels} depth {args.depth} "
          f"pools {net.config.level_pools()}")
    print(f"napari-unet predict: {t_ours:.2f} s   MONAI sliding_window_inference (gaussian): {t_monai:.2f} s   "
          f"ratio {t_ours / t_monai:.2f}")
    print(f"CPU time: {c_ours:.2f} s vs {c_monai:.2f} s, ratio {c_ours / c_monai:.2f}; load average {load:.1f}")
    print(f"agreement: max |p_ours - p_monai| = {diff:.3f}, same arg-max class on {100 * same:.2f}% of voxels")
    if args.write_docs:
        write_section("3D tiled prediction", f"""
`benchmarks/bench_tiles3d.py --shape {' '.join(map(str, args.shape))} --tile {' '.join(map(str, tile))} --repeats {args.repeats}`: a 3D U-Net (base {args.base_channels}, depth {args.depth}, pooling {net.config.level_pools()} for spacing {tuple(args.spacing)}, random weights) over a {args.shape[0]}×{args.shape[1]}×{args.shape[2]} float32 volume in {tile[0]}×{tile[1]}×{tile[2]} tiles overlapping by 0.25, batch 1, CPU: {cpu_description()}, torch {torch.__version__}; load average {load:.1f} while it ran (other test runs shared the 2 cores; runs alternate in balanced pairs so both sides met the same load). Median of {args.repeats} runs each.

| | time | ratio | CPU time |
|---|---|---|---|
| napari-unet `predict` (3D tiles, sine blend) | {t_ours:.2f} s | {t_ours / t_monai:.2f} | {c_ours:.2f} s |
| MONAI `sliding_window_inference` (Gaussian blend) | {t_monai:.2f} s | 1.00 | {c_monai:.2f} s |

The two agree to {diff:.3f} in probability (the blend windows differ: a sine ramp against a Gaussian), with the same arg-max class on {100 * same:.2f}% of voxels. Goal (issue 16): ≤ 1.0× MONAI's time.
""")


if __name__ == "__main__":
    main()
