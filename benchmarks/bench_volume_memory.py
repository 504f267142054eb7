"""Peak memory of segmenting a large Z stack into 3D objects with the shipped 2D model.

    .venv/bin/python benchmarks/bench_volume_memory.py [--planes 50] [--edge 1024] [--spacing 3 1 1]

The issue's goal is a 200x1024x1024 uint16 stack in <= 2 GB over the baseline; at that size a
run takes long on two cores, so ``--planes 50`` measures a quarter of it and the figures scale
with the planes (every large array the route holds is one value or a few per voxel).

The volume: a generated confocal-like 50x256x256 stack (napari_unet.synth.volumes) tiled 4x4 in
Y and X and repeated along Z up to ``--planes`` (dense nuclei everywhere, as a real field of
view), uint16. The baseline is the process's resident memory after the volume is made, the
model loaded and a small volume segmented (torch's libraries and thread pools in place); the
peak is the kernel's high-water mark (VmHWM, reset before the run), and a sampling thread
notes which stage of the progress the resident memory peaked in (the 3D objects are made
after the last plane's progress, so they count in ``planes``).

bytes per voxel are the peak over the baseline divided by the voxels: they include a part that
does not grow with the planes (the network's activations on a tile, ~0.3 GB), so the figure
at 200 planes extrapolated from a few is high; two runs (``--planes 20`` and ``50``) give the
slope. Wall time depends on the load of the machine; CPU time less so.
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import numpy as np
import psutil

from napari_unet import load_model, segment_iter
from napari_unet.progress import run
from napari_unet.synth.volumes import VolumeConfig, synth_volume

GB = 1024**3


def _hwm() -> int:
    """The process's peak resident memory since the last reset, in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _reset_hwm() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def volume(planes: int, edge: int) -> tuple[np.ndarray, int]:
    """A dense uint16 stack of (planes, edge, edge) and the nuclei in one 256² tile."""
    tile = synth_volume(11, (50, 256, 256), VolumeConfig(z_ratio=(3.0, 3.0), dtype_weights=(0, 1, 0, 0)))
    reps = (-(-planes // 50), -(-edge // 256), -(-edge // 256))
    stack = np.tile(tile.image.astype(np.uint16), reps)[:planes, :edge, :edge]
    return np.ascontiguousarray(stack), int(tile.labels.max())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--planes", type=int, default=50)
    ap.add_argument("--edge", type=int, default=1024)
    ap.add_argument("--spacing", type=float, nargs=3, default=(3.0, 1.0, 1.0))
    ap.add_argument("--zoom", type=float, default=None, help="fix the zoom (default: automatic)")
    args = ap.parse_args()
    model = load_model()
    stack, per_tile = volume(args.planes, args.edge)
    run(segment_iter(stack[:4, :128, :128], model, axes="ZYX", spacing=args.spacing, device="cpu"))  # warm-up
    proc = psutil.Process()
    base = proc.memory_info().rss
    peaks: dict[str, int] = {}
    stage = ["start"]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            rss = proc.memory_info().rss
            peaks[stage[0]] = max(peaks.get(stage[0], 0), rss)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    _reset_hwm()
    sampler.start()
    start, cpu = time.perf_counter(), time.process_time()
    result = run(segment_iter(stack, model, axes="ZYX", spacing=args.spacing, device="cpu", zoom=args.zoom),
                 lambda step: stage.__setitem__(0, step.stage))
    stage[0] = "returned"
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    time.sleep(0.05)
    stop.set()
    sampler.join()
    peak = _hwm() - base
    voxels = stack.size
    print(f"volume {stack.shape} uint16 ({stack.nbytes / GB:.2f} GB), spacing {tuple(args.spacing)}, "
          f"zoom {result.zoom:.3g}, {int(result.labels.max())} objects; {seconds:.0f} s ({cpu:.0f} s of CPU); "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"baseline {base / GB:.2f} GB; peak over baseline {peak / GB:.2f} GB "
          f"({peak / voxels:.1f} bytes per voxel: {peak / voxels * 200 * 1024**2 / GB:.2f} GB at 200x1024x1024)")
    print(f"probabilities kept: {result.probabilities.dtype} {result.probabilities.shape} "
          f"({result.probabilities.nbytes / GB:.2f} GB); labels {result.labels.dtype} ({result.labels.nbytes / GB:.2f} GB)")
    for name, rss in peaks.items():
        print(f"  peak during {name:12s} {(rss - base) / GB:6.2f} GB over baseline")


if __name__ == "__main__":
    main()
