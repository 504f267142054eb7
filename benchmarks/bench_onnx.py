"""ONNX Runtime against PyTorch on the CPU, for the shipped model: prints figures and ratios.

    bash run.sh bench bench_onnx                  # 1 thread each (the machine's 2 cores are shared)
    bash run.sh bench bench_onnx --threads 2 --write-docs

The shipped model (``load_model()``) is exported with ``export_model(..., format="onnx")``
and both runtimes run the same 512² tiles of the sample image, normalised as ``predict``
does, at batch 1 and 4, in the same process, interleaved (PyTorch, ONNX Runtime,
PyTorch, ...) so that load from other jobs hits both alike. PyTorch runs as ``predict``
runs it (fp32, channels_last, ``inference_mode``) and on plain NCHW
tensors; the faster layout is compared. Results are compared before any timing
(logits and softmax probabilities, max absolute difference; labels by arg-max).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from _docs import cpu_description, write_section

from napari_unet.inference.images import normalize
from napari_unet.model.export import ONNX_OPSET, export_model
from napari_unet.model.files import load_model
from napari_unet.synth.sample import nuclei_sample

TILE = 512
EQUAL = 1e-4  # largest difference in probabilities that counts as equal results
FOLLOW_UP = (
    ": `napari-unet segment --backend onnx` (and `napari_unet.model.onnx_runtime.onnx_network`) runs"
    " the network this way, with the same labels; the graph is exported once per model and cached"
    " (pads to multiples of 16 as the network itself does)."
)


def tiles(batch: int) -> np.ndarray:
    """``batch`` 512² tiles of the normalised 1024² sample image, (batch, 1, 512, 512) float32."""
    image = normalize(nuclei_sample((1024, 1024)).image)
    cut = [image[y : y + TILE, x : x + TILE] for y in (0, TILE) for x in (0, TILE)]
    return np.stack(cut[:batch])[:, None].astype(np.float32)


def torch_runner(net, x: np.ndarray, layout: str):
    """PyTorch's forward pass on ``x`` as ``predict`` runs it (channels_last) or plain NCHW."""
    xt = torch.from_numpy(x)
    xt = xt.contiguous(memory_format=torch.channels_last) if layout == "channels_last" else xt.contiguous()

    def run():
        with torch.inference_mode():
            return net(xt).numpy()

    return run


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def timed(fn, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1, help="threads for each runtime (default 1)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per runtime and batch")
    parser.add_argument("--write-docs", action="store_true", help="write the section of docs/benchmarks.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = load_model()
    nets = {"channels_last": load_model().to(memory_format=torch.channels_last), "NCHW": model}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        onnx_path = export_model(model, Path(tmp) / "nuclei.onnx", format="onnx")
        t_export = time.perf_counter() - t
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])

    load = os.getloadavg()[0]
    head = (f"machine: {cpu_description()}, load average {load:.1f}; {args.threads} thread(s) each; "
            f"torch {torch.__version__}, onnxruntime {ort.__version__} (opset {ONNX_OPSET})")
    print(head)
    print(f"model: shipped nuclei UNet {model.config}; ONNX export took {t_export:.1f} s")
    rows = []
    for batch in (1, 4):
        x = tiles(batch)
        runs = {f"PyTorch {layout}": torch_runner(net, x, layout) for layout, net in nets.items()}
        runs["ONNX Runtime"] = lambda: session.run(["output"], {"input": x})[0]
        outs = {name: run() for name, run in runs.items()}  # also the warm-up
        ref, out = outs["PyTorch channels_last"], outs["ONNX Runtime"]
        d_logits = max(float(np.abs(o - ref).max()) for o in outs.values())
        d_probs = max(float(np.abs(softmax(o) - softmax(ref)).max()) for o in outs.values())
        same_labels = float((out.argmax(1) == ref.argmax(1)).mean())
        times = {name: [] for name in runs}
        for _ in range(args.repeat):  # interleaved: all see the same load
            for name, run in runs.items():
                times[name] += timed(run, 1)
        for name, ts in times.items():
            print(f"  batch {batch}, {name}: median {statistics.median(ts) * 1e3:.0f} ms, best {min(ts) * 1e3:.0f} ms")
        fastest = min((n for n in times if n.startswith("PyTorch")), key=lambda n: statistics.median(times[n]))
        t_torch, t_ort = times[fastest], times["ONNX Runtime"]
        med_t, med_o = statistics.median(t_torch), statistics.median(t_ort)
        best_t, best_o = min(t_torch), min(t_ort)
        layout = fastest.split()[1]
        rows.append((batch, layout, med_t, med_o, best_t, best_o, d_logits, d_probs, same_labels))
        print(f"batch {batch} x {TILE}²: PyTorch ({layout}, the faster layout) median {med_t * 1e3:.0f} ms "
              f"(best {best_t * 1e3:.0f}), "
              f"ONNX Runtime median {med_o * 1e3:.0f} ms (best {best_o * 1e3:.0f}) -> ONNX Runtime at "
              f"{med_t / med_o:.2f}x PyTorch's speed (best-of: {best_t / best_o:.2f}x); "
              f"max |diff| logits {d_logits:.1e}, probabilities {d_probs:.1e} "
              f"({'equal' if d_probs <= EQUAL else 'NOT equal'} at {EQUAL:g}), same arg-max {same_labels:.4%}")

    faster = all(r[2] > r[3] * 1.05 for r in rows)
    equal = all(r[7] <= EQUAL for r in rows)
    verdict = ("ONNX Runtime is faster at equal results" if faster and equal else
               "ONNX Runtime is not clearly faster (within 5 % or slower)" if equal else
               "results differ beyond the tolerance")
    print(verdict)
    if args.write_docs:
        write_section("ONNX Runtime", docs_body(args, rows, t_export, verdict, load))


def docs_body(args, rows: list, t_export: float, verdict: str, load: float) -> str:
    table = "\n".join(
        f"| {b} × 512² | {mt * 1e3:.0f} ms ({bt * 1e3:.0f}), {lay} | {mo * 1e3:.0f} ms ({bo * 1e3:.0f}) | "
        f"**{mt / mo:.2f}×** ({bt / bo:.2f}×) | {dl:.1e} / {dp:.1e} | {same:.2%} |"
        for b, lay, mt, mo, bt, bo, dl, dp, same in rows
    )
    per_tile = rows[-1][2] / 4 / rows[0][2]
    return f"""
Measured with `bash run.sh bench bench_onnx --threads {args.threads} --write-docs`
(benchmarks/bench_onnx.py) on {cpu_description()} ({platform.machine()}), torch
{torch.__version__.split("+")[0]}, onnxruntime {ort.__version__}, ONNX opset {ONNX_OPSET},
{args.threads} thread(s) per runtime. The machine's 2 cores are shared with other jobs (load
average {load:.1f} at the start), so figures move from run to run and are not comparable
with other sections' (ratios within one run are); the runtimes ran interleaved in one
process, {args.repeat} times each, so that they saw the same load. The network is the
shipped model (`load_model()`), exported with `export_model(model, "nuclei.onnx",
format="onnx")` ({t_export:.0f} s). PyTorch ran as `predict` runs it (fp32, channels_last,
`inference_mode`) and on plain NCHW tensors; the table compares the faster layout. ONNX
Runtime ran with its CPU provider and all graph optimisations. Inputs: 512² tiles of the
normalised 1024² sample image.

| batch | PyTorch, median (best), layout | ONNX Runtime, median (best) | ONNX Runtime's speed vs PyTorch, median (best) | max \\|diff\\| logits / probabilities | same arg-max |
|---|---|---|---|---|---|
{table}

{verdict}{FOLLOW_UP if verdict.endswith("equal results") else "."} PyTorch's time per tile at
batch 4 was {per_tile:.2f}× its time at batch 1 in this run; `predict` uses batch 1 on the
CPU, so the batch-1 row is the one that bears on segmenting.
"""


if __name__ == "__main__":
    main()
