"""A whole time series at once: its cost against one network pass over it at the chosen zoom.

    bash run.sh bench bench_series [--frames 20] [--size 700 1100] [--write-docs]

Automatic zoom measures the objects on a few planes (napari_unet.inference.segment.MEASURE_PLANES)
and then predicts every frame at the zoom they call for; the ratio is the whole
``segment(series, axes="TYX")`` over ``predict`` of every frame at that zoom (the least any
route must spend). The issue that asked for it measured ~4-5 before (a full-resolution
measuring pass over every frame that was thrown away).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _docs import cpu_description, write_section

from napari_unet import load_model, predict
from napari_unet.inference.segment import MEASURE_PLANES, segment_iter
from napari_unet.progress import run
from napari_unet.synth.sample import nuclei_sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--size", type=int, nargs=2, default=(700, 1100))
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    series = np.stack([nuclei_sample(tuple(args.size), seed=s).image for s in range(args.frames)])
    model = load_model()
    predict(series[0, :256, :256], model, device="cpu")  # warm-up
    start = time.perf_counter()
    result = run(segment_iter(series, model, axes="TYX", device="cpu"))
    whole = time.perf_counter() - start
    start = time.perf_counter()
    predict(series, model, zoom=result.zoom, device="cpu")
    one_pass = time.perf_counter() - start
    ratio = whole / one_pass
    body = "\n".join([
        f"`bash run.sh bench bench_series --frames {args.frames} --size {args.size[0]} {args.size[1]}` "
        f"(benchmarks/bench_series.py): {args.frames} frames of {args.size[0]}×{args.size[1]} "
        "(napari_unet.synth.sample.nuclei_sample, seeds 0..), the shipped model, automatic zoom. "
        f"Machine: {cpu_description()}, torch on the CPU; nothing else heavy was running.",
        "",
        "| | seconds |",
        "|---|---|",
        f"| `segment(series, axes=\"TYX\")`: measured on {MEASURE_PLANES} planes, every frame at zoom "
        f"×{result.zoom:g}, objects | {whole:.1f} |",
        f"| one `predict` pass over every frame at zoom ×{result.zoom:g} | {one_pass:.1f} |",
        f"| **ratio** (target ≤ 1.3; ~4-5 before) | **{ratio:.2f}** |",
    ])
    print(body)
    if args.write_docs:
        write_section("Whole time series", body)


if __name__ == "__main__":
    main()
