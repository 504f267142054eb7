"""How block-wise segmentation scales: time and peak memory per process against image size,
in-process `segment` against blocks in this process, on 1 and on 2 dask workers.

    nice -n 10 .venv/bin/python benchmarks/bench_scale.py --sizes 2048 4096 8192 16384
    nice -n 10 .venv/bin/python benchmarks/bench_scale.py --volume 320 512 --modes blocks

Images are generated synthetic nuclei (1024² tiles of different seeds) written to chunked
zarr under --folder. Every measurement runs in a fresh process, so each peak memory
(VmHWM: the most resident memory a process ever held) is its own. ``segment`` (the whole
image in memory) is run only up to --whole-max pixels a side; below it each block-wise
run is compared with it: wall and CPU time (CPU is steadier on a shared machine) and
AP@0.5 of its labels against the whole pass's. Writes the "Scale" section of
docs/benchmarks.md (--no-docs: only print).
"""

from __future__ import annotations

import argparse
import json
import os
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


def make_volume(path: Path, planes: int, edge: int) -> None:
    """A dense (planes, edge, edge) uint16 nuclei volume (Z spacing 3x the pixel) as chunked zarr."""
    import zarr
    from bench_volume_memory import volume

    if (path / ".zarray").exists():
        return
    stack, _ = volume(planes, edge)
    z = zarr.create_array(str(path), shape=stack.shape, chunks=(32, 256, 256), dtype="uint16", zarr_format=2,
                          overwrite=True)
    z[...] = stack


def vmhwm_mb() -> float:
    """Peak resident memory of the calling process (MB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one(mode: str, src: str, dst: str, block: int, zoom: float, spacing: tuple[float, ...] | None = None) -> dict:
    """One measurement (in this process): ``whole``, ``blocks`` or ``dask-N``; ``spacing``: a volume's."""
    import numpy as np
    import torch

    from napari_unet.distributed import segment_blocks_iter, segment_zarr
    from napari_unet.inference.segment import segment
    from napari_unet.io.zarr import open_zarr
    from napari_unet.model.files import load_model
    from napari_unet.progress import run

    model = load_model()
    block = block or None  # 0: the package's default block size
    start, cpu = time.perf_counter(), time.process_time()
    out = {"mode": mode, "threads": torch.get_num_threads()}
    if mode == "whole":
        image = np.asarray(open_zarr(src).array[...])
        labels = segment(image, model, zoom=zoom)
        out["objects"] = int(labels.max())
        np.save(dst, labels)  # what the block-wise runs are compared with
    elif mode == "blocks":
        report = run(segment_blocks_iter(src, dst, model, block_size=block, zoom=zoom, overwrite=True,
                                         spacing=spacing))
        out["objects"], out["blocks"] = report.objects, report.blocks
    else:
        from distributed import Client, LocalCluster

        workers = int(mode.split("-")[1])
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                          memory_limit=None) as cluster, Client(cluster) as client:
            client.wait_for_workers(workers)
            start, cpu = time.perf_counter(), time.process_time()  # the cluster's start-up is not counted
            worker_cpu = client.run(time.process_time)
            report = segment_zarr(src, dst, model, client=client, block_size=block, zoom=zoom, overwrite=True,
                                  progress=False, spacing=spacing)
            out["seconds"] = time.perf_counter() - start
            after = client.run(time.process_time)
            out["cpu_seconds"] = time.process_time() - cpu + sum(after[w] - worker_cpu[w] for w in after)
            out["worker_peak_mb"] = max(client.run(vmhwm_mb).values())
        out["objects"], out["blocks"] = report.objects, report.blocks
    out.setdefault("seconds", time.perf_counter() - start)
    out.setdefault("cpu_seconds", time.process_time() - cpu)  # every thread of this process
    out["peak_mb"] = vmhwm_mb()
    out["load"] = os.getloadavg()[0]
    return out


def agreement(whole: Path, labels: Path) -> float:
    """AP@0.5 of block-wise labels against the whole image's."""
    import numpy as np

    from napari_unet.io.zarr import open_labels
    from napari_unet.training.metrics import average_precision

    return float(average_precision(np.load(whole), np.asarray(open_labels(labels, mode="r")[...]), [0.5])[0])


RESULTS: list[Path] = []  # --results: every measurement is appended there as a JSON line


def measure(mode: str, src: Path, dst: Path, block: int, zoom: float, spacing=None, size: int = 0) -> dict:
    cmd = [sys.executable, __file__, "--one", mode, str(src), str(dst), str(block), str(zoom),
           ",".join(map(str, spacing or ()))]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    result = {"size": size, **json.loads(done.stdout.strip().splitlines()[-1])}
    print(json.dumps(result), flush=True)
    for path in RESULTS:
        with path.open("a") as f:
            f.write(json.dumps(result) + "\n")
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096])
    parser.add_argument("--block", type=int, default=0, help="block edge (default 0: the package's default)")
    parser.add_argument("--modes", nargs="+", default=["blocks", "dask-1", "dask-2"],
                        help="block-wise runs to measure beside the whole pass: blocks, dask-N")
    parser.add_argument("--zoom", type=float, default=0.625, help="fixed: whole and blocks see the same pixels")
    parser.add_argument("--whole-max", type=int, default=4096, help="largest image segmented whole in memory")
    parser.add_argument("--folder", type=Path, default=Path("/tmp/napari-unet-scale"))
    parser.add_argument("--volume", type=int, nargs=2, metavar=("PLANES", "EDGE"),
                        help="instead of --sizes: a (PLANES, EDGE, EDGE) nuclei volume, block-wise in 3D (peak memory)")
    parser.add_argument("--one", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument("--results", type=Path, help="append each measurement here as a JSON line (plot_scale.py)")
    args = parser.parse_args()
    if args.one:
        mode, src, dst, block, zoom, spacing = [*args.one, ""][:6]
        spacing = tuple(float(v) for v in spacing.split(",")) if spacing else None
        print(json.dumps(one(mode, src, dst, int(block), float(zoom), spacing)))
        return
    from _docs import cpu_description, write_section

    args.folder.mkdir(parents=True, exist_ok=True)
    RESULTS.extend([args.results] if args.results else [])
    if args.volume:  # 3D blocks: how much memory one block of a volume takes (2D comparisons need --sizes)
        planes, edge = args.volume
        src = args.folder / f"volume_{planes}x{edge}.zarr"
        make_volume(src, planes, edge)
        for mode in args.modes:
            dst = args.folder / f"labels_volume_{mode}.zarr"
            measure(mode, src, dst, args.block, args.zoom, spacing=(3.0, 1.0, 1.0), size=edge)
            shutil.rmtree(dst, ignore_errors=True)
        return
    rows, largest = [], None  # largest: the biggest whole pass so far, the yardstick of bigger images
    for size in args.sizes:
        src = args.folder / f"nuclei_{size}.zarr"
        make_image(src, size)
        row = {"size": size}
        whole = args.folder / f"whole_{size}.npy"
        if size <= args.whole_max:
            row["whole"] = largest = measure("whole", src, whole, args.block, args.zoom, size=size)
        elif largest is not None:  # the whole pass of a crop, scaled by area: what one pass would cost
            area = (size / largest["size"]) ** 2
            row["whole"] = {"scaled_from": largest["size"], "seconds": largest["seconds"] * area,
                            "cpu_seconds": largest["cpu_seconds"] * area}
        for mode in args.modes:
            dst = args.folder / f"labels_{size}_{mode}.zarr"
            row[mode] = measure(mode, src, dst, args.block, args.zoom, size=size)
            if size <= args.whole_max:
                row[mode]["ap50_vs_whole"] = agreement(whole, dst)
                print(f"{size}² {mode}: AP@0.5 against the whole pass {row[mode]['ap50_vs_whole']:.4f}", flush=True)
            if "whole" in row:
                print(f"{size}² {mode}: {row[mode]['seconds'] / row['whole']['seconds']:.2f}x the whole pass's "
                      f"wall time, {row[mode]['cpu_seconds'] / row['whole']['cpu_seconds']:.2f}x its CPU time"
                      + (f" (scaled by area from {largest['size']}²)" if size > args.whole_max else ""), flush=True)
            shutil.rmtree(dst, ignore_errors=True)
        rows.append(row)
    if not args.no_docs:
        write_section("Scale", _section(rows, args, cpu_description()))


def _section(rows: list[dict], args, cpu: str) -> str:
    block = f"{args.block}²" if args.block else "the default size (2048² in 2D)"
    lines = [
        f"`nice -n 10 .venv/bin/python benchmarks/bench_scale.py --sizes {' '.join(map(str, args.sizes))}` "
        f"on {cpu}, shared with other engineers' test runs (load average in the table). The shipped nuclei "
        f"model, zoom fixed at {args.zoom:g} (so whole and block-wise runs see the same pixels), blocks of "
        f"{block} plus halo, synthetic uint16 nuclei in 512² zarr chunks. CPU time is every thread's, of "
        "the process and (dask) its workers: steadier than wall time on a shared machine. Peak memory is VmHWM "
        "of each process (the workers' for dask); dask times leave out the cluster's start-up but include the "
        "workers' first import of napari-unet and the model's transfer. AP@0.5 compares each block-wise run's "
        "labels with the whole pass's. Images larger than --whole-max are compared with the largest whole "
        "pass scaled by area.",
        "",
        "| image | run | blocks | wall (s) | CPU (s) | x whole (wall / CPU) | peak (MB) | AP@0.5 vs whole | load |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        w = r.get("whole")
        for mode in ["whole", *args.modes]:
            m = r.get(mode)
            if m is None or (mode == "whole" and "scaled_from" in m):
                continue
            ratio = (f"{m['seconds'] / w['seconds']:.2f}x / {m['cpu_seconds'] / w['cpu_seconds']:.2f}x"
                     if w and mode != "whole" else "—")
            peak = m.get("worker_peak_mb", m["peak_mb"])
            ap = f"{m['ap50_vs_whole']:.3f}" if "ap50_vs_whole" in m else "—"
            lines.append(f"| {r['size']}² | {mode} | {m.get('blocks', '—')} | {m['seconds']:.0f} | "
                         f"{m['cpu_seconds']:.0f} | {ratio} | {peak:.0f} | {ap} | {m['load']:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
