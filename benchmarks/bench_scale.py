"""How block-wise segmentation scales: time and peak memory per process against image size,
in-process `segment` against blocks in this process, on 1 and on 2 dask workers.

    nice -n 10 .venv/bin/python benchmarks/bench_scale.py --sizes 2048 4096 8192 16384

Images are generated synthetic nuclei (1024² tiles of different seeds) written to chunked
zarr under --folder. Every measurement runs in a fresh process, so each peak memory
(VmHWM: the most resident memory a process ever held) is its own. ``segment`` (the whole
image in memory) is run only up to --whole-max pixels a side; above it the table shows
the in-process time of the largest size measured, scaled by area. Writes the "Scale"
section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

TILE = 1024  # generated tiles: each a synthetic nuclei image of its own seed


def make_image(path: Path, size: int) -> None:
    """A ``size``² uint16 nuclei image as chunked zarr, written tile by tile (never whole in memory)."""
    import zarr

    from napari_unet.synth.sample import nuclei_sample

    if (path / ".zarray").exists():
        return
    z = zarr.create_array(str(path), shape=(size, size), chunks=(512, 512), dtype="uint16", zarr_format=2,
                          overwrite=True)
    n = size // TILE
    for i in range(n):
        for j in range(n):
            z[i * TILE:(i + 1) * TILE, j * TILE:(j + 1) * TILE] = nuclei_sample((TILE, TILE), seed=i * n + j).image


def vmhwm_mb() -> float:
    """Peak resident memory of the calling process (MB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one(mode: str, src: str, dst: str, block: int, zoom: float) -> dict:
    """One measurement (in this process): ``whole``, ``blocks`` or ``dask-N``."""
    import numpy as np
    import torch

    from napari_unet.distributed import segment_blocks_iter, segment_zarr
    from napari_unet.inference.segment import segment
    from napari_unet.io.zarr import open_zarr
    from napari_unet.model.files import load_model
    from napari_unet.progress import run

    model = load_model()
    start = time.perf_counter()
    out = {"mode": mode}
    if mode == "whole":
        image = np.asarray(open_zarr(src).array[...])
        labels = segment(image, model, zoom=zoom)
        out["objects"] = int(labels.max())
    elif mode == "blocks":
        report = run(segment_blocks_iter(src, dst, model, block_size=block, zoom=zoom, overwrite=True))
        out["objects"], out["blocks"] = report.objects, report.blocks
    else:
        from distributed import Client, LocalCluster

        workers = int(mode.split("-")[1])
        threads = max(1, torch.get_num_threads() // workers)
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                          memory_limit=None) as cluster, Client(cluster) as client:
            client.wait_for_workers(workers)
            client.run(torch.set_num_threads, threads)
            start = time.perf_counter()  # the cluster's start-up is not the segmentation's time
            report = segment_zarr(src, dst, model, client=client, block_size=block, zoom=zoom, overwrite=True,
                                  progress=False)
            out["seconds"] = time.perf_counter() - start
            out["worker_peak_mb"] = max(client.run(vmhwm_mb).values())
        out["objects"], out["blocks"] = report.objects, report.blocks
    out.setdefault("seconds", time.perf_counter() - start)
    out["peak_mb"] = vmhwm_mb()
    return out


def measure(mode: str, src: Path, dst: Path, block: int, zoom: float) -> dict:
    cmd = [sys.executable, __file__, "--one", mode, str(src), str(dst), str(block), str(zoom)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096])
    parser.add_argument("--block", type=int, default=1024)
    parser.add_argument("--zoom", type=float, default=0.625, help="fixed: whole and blocks see the same pixels")
    parser.add_argument("--whole-max", type=int, default=4096, help="largest image segmented whole in memory")
    parser.add_argument("--folder", type=Path, default=Path("/tmp/napari-unet-scale"))
    parser.add_argument("--one", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    if args.one:
        mode, src, dst, block, zoom = args.one
        print(json.dumps(one(mode, src, dst, int(block), float(zoom))))
        return
    from _docs import cpu_description, write_section

    args.folder.mkdir(parents=True, exist_ok=True)
    rows, whole_rate = [], None
    for size in args.sizes:
        src = args.folder / f"nuclei_{size}.zarr"
        make_image(src, size)
        row = {"size": size}
        if size <= args.whole_max:
            row["whole"] = measure("whole", src, args.folder / "unused", args.block, args.zoom)
            whole_rate = row["whole"]["seconds"] / size**2
        for mode in ("blocks", "dask-1", "dask-2"):
            row[mode] = measure(mode, src, args.folder / f"labels_{size}_{mode}.zarr", args.block, args.zoom)
            shutil.rmtree(args.folder / f"labels_{size}_{mode}.zarr", ignore_errors=True)
        row["whole_scaled"] = whole_rate * size**2 if whole_rate else None
        rows.append(row)
    if not args.no_docs:
        write_section("Scale", _section(rows, args, cpu_description()))


def _section(rows: list[dict], args, cpu: str) -> str:
    lines = [
        f"`nice -n 10 .venv/bin/python benchmarks/bench_scale.py --sizes {' '.join(map(str, args.sizes))}` "
        f"on {cpu}, shared with other engineers' test runs (see below). The shipped nuclei model, "
        f"zoom fixed at {args.zoom:g} (so whole and block-wise runs see the same pixels), blocks of "
        f"{args.block}² plus halo, synthetic uint16 nuclei in 512² zarr chunks. Peak memory is VmHWM of each "
        "process (the workers' for dask); dask times leave out the cluster's start-up but include the workers' "
        "first import of napari-unet and the model's transfer.",
        "",
        "| image | segment, whole (s) | peak (MB) | blocks in-process (s) | peak (MB) | 1 worker (s) | worker peak "
        "(MB) | 2 workers (s) | worker peak (MB) | blocks | blocks/s (1 / 2 workers) | overhead 1 worker vs in-process |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        w = r.get("whole")
        base = w["seconds"] if w else r["whole_scaled"]
        whole = f"{w['seconds']:.0f}" if w else (f"~{base:.0f} (scaled by area)" if base else "—")
        d1, d2, b = r["dask-1"], r["dask-2"], r["blocks"]
        lines.append(
            f"| {r['size']}² | {whole} | {w['peak_mb']:.0f} | " if w else f"| {r['size']}² | {whole} | — | "
        )
        lines[-1] += (
            f"{b['seconds']:.0f} | {b['peak_mb']:.0f} | {d1['seconds']:.0f} | {d1['worker_peak_mb']:.0f} | "
            f"{d2['seconds']:.0f} | {d2['worker_peak_mb']:.0f} | {d1['blocks']} | "
            f"{d1['blocks'] / d1['seconds']:.3f} / {d2['blocks'] / d2['seconds']:.3f} | "
            f"{d1['seconds'] / b['seconds']:.2f}x |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
