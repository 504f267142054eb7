"""The CUDA paths on a GPU: prints figures and ratios (no assertions). CI has no GPU; run it where one is.

    bash run.sh bench bench_gpu [--json FILE]

bench_predict --device cuda covers the forward pass and tiled prediction of a random network;
this script covers what a user runs on a GPU, with the shipped models on generated images:
1. ``segment()`` of a 2048² and an 8192² image, end to end, and its parts (``predict``, the
   instance post-processing on the CPU); tile batches 1/4/16 for ``predict``.
2. A training step of the shipped recipe (4 × 192², base 24) and of a larger batch (16 × 256²):
   fp32 (torch's default: TF32 convolutions) against bf16 autocast, on one made batch; making
   a batch on the CPU; ``train_iter``'s steps per second as it runs (the batch made in the loop).
3. Out of memory: the process limited to a small share of the GPU's memory, ``predict`` of a
   4096² image asked for batch 64 of 1024² tiles halves its batch, then its tile, until it fits;
   its probabilities against an unlimited run.
4. 3D: the shipped 3D nuclei network on a generated 64 × 512 × 512 volume: ``predict``, ``segment``.
5. Clicks: ``ClickSegmenter`` on the GPU, first clicks (the segmentation model's window) and
   refining clicks (the click network), p50 / p95.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings

import numpy as np
import torch

from napari_unet import UNet, load_model, predict, segment
from napari_unet.clicks.segmenter import ClickSegmenter, load_click_model
from napari_unet.clicks.types import Click
from napari_unet.inference.instances import instances_from_probabilities
from napari_unet.model.files import VOLUME_MODEL
from napari_unet.synth.sample import nuclei_sample
from napari_unet.synth.volumes import synth_volumes
from napari_unet.training.batches import PatchSampler
from napari_unet.training.engine import TrainConfig, train_iter
from napari_unet.training.losses import segmentation_loss
from napari_unet.training.sources import SynthSource

DEV = torch.device("cuda")  # --device cpu tries the script where there is no GPU (tiny sizes only)
FIGURES: dict[str, float | str] = {}
EDGES, VOLUME, TRAIN_SECONDS = (2048, 8192), (64, 512, 512), 20.0
BATCHES = ((4, 192, 24), (16, 256, 24))  # (batch, patch, base) of the timed training steps


def timed(fn, repeat: int = 3, warm: bool = True) -> float:
    """Best of ``repeat`` runs after one warm-up, in seconds (the GPU's queue drained each time)."""
    if warm:
        fn()
        sync()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t)
    return best


def sync() -> None:
    if DEV.type == "cuda":
        torch.cuda.synchronize()


def report(key: str, value: float, text: str) -> None:
    FIGURES[key] = round(value, 4)
    print(text, flush=True)


def part_segment() -> None:
    model = load_model()
    sample = nuclei_sample((2048, 2048), seed=3)
    for edge in EDGES:
        image = np.tile(sample.image, (edge // 2048, edge // 2048))
        big = edge > 2048  # warmed up by the smaller one; timed once
        t_pred = timed(lambda: predict(image, model, device=DEV), 1 if big else 2, warm=not big)
        probs = predict(image, model, device=DEV)
        t_inst = timed(lambda: instances_from_probabilities(probs), 1, warm=not big)
        t_seg = timed(lambda: segment(image, model, device=DEV), 1, warm=not big)
        n = int(segment(image, model, device=DEV).max()) if edge == 2048 else 0
        report(f"segment_{edge}_s", t_seg, f"segment() {edge}²: {t_seg:.2f} s end to end ({edge**2 / t_seg / 1e6:.1f} Mpx/s)"
               f"; predict {t_pred:.2f} s, instances on the CPU {t_inst:.2f} s" + (f"; {n} objects" if n else ""))
        FIGURES[f"predict_{edge}_s"], FIGURES[f"instances_{edge}_s"] = round(t_pred, 4), round(t_inst, 4)
    image = np.tile(sample.image, (2, 2))
    for batch in (1, 4, 16):
        t = timed(lambda: predict(image, model, device=DEV, batch_size=batch), 2)
        report(f"predict_4096_batch{batch}_s", t, f"predict 4096², tile batch {batch:2d}: {t:.3f} s")


def part_train() -> None:
    for batch_size, patch, base in BATCHES:
        cfg = TrainConfig(batch_size=batch_size, patch_size=patch)
        side = int(round(patch / cfg.augment.scale[0])) + 1
        sampler = PatchSampler(SynthSource(shape=(side, side), pool=16), patch, batch_size,
                               rng=np.random.default_rng(0))
        batch = sampler()
        images, classes, weights = batch.images.to(DEV), batch.classes.to(DEV), batch.weights.to(DEV)
        for amp in (False, True) if DEV.type == "cuda" else (False,):
            torch.manual_seed(0)
            model = UNet(1, 3, base_channels=base, depth=4).to(DEV).train()
            opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

            def step():
                with torch.autocast(DEV.type, dtype=torch.bfloat16, enabled=amp):
                    loss = segmentation_loss(model(images), classes, weights)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

            t = timed(step, 10)
            name = "bf16 autocast" if amp else "fp32"
            report(f"train_step_{batch_size}x{patch}_{'bf16' if amp else 'fp32'}_ms", t * 1e3,
                   f"training step {batch_size} × {patch}², base {base}, {name}: {t * 1e3:.1f} ms")
        t_make = min(_seconds(sampler) for _ in range(5))
        report(f"make_batch_{batch_size}x{patch}_ms", t_make * 1e3,
               f"  making that batch on the CPU (pool of 16 images): {t_make * 1e3:.1f} ms")
    model = UNet(1, 3, base_channels=24, depth=4)
    config = TrainConfig(batch_size=4, patch_size=192, max_seconds=TRAIN_SECONDS, val_every=0, clock="wall")
    steps = 0
    t0 = time.perf_counter()
    for rec in train_iter(model, SynthSource(shape=(256, 256), pool=50), config, device=DEV):
        steps = rec.step
    t = time.perf_counter() - t0
    report("train_iter_steps_per_s", steps / t, f"train_iter, the shipped recipe (4 × 192², pool 50): "
           f"{steps} steps in {t:.1f} s = {steps / t:.1f} steps/s (the batch made in the loop)")


def _seconds(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def part_oom() -> None:
    model = load_model()
    image = np.tile(nuclei_sample((2048, 2048), seed=3).image, (2, 2))
    reference = predict(image, model, device=DEV)
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(DEV).total_memory
    fraction = 2 * 2**30 / total  # 2 GiB: batch 64 of 1024² tiles needs far more
    torch.cuda.set_per_process_memory_fraction(fraction, 0)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t = time.perf_counter()
            limited = predict(image, model, device=DEV, batch_size=64, tile_size=1024)
            t = time.perf_counter() - t
        diff = float(np.abs(limited - reference).max())
        same = float(np.mean(limited.argmax(0) == reference.argmax(0)))
        cpu = any("CPU" in str(w.message) for w in caught)
        report("oom_retry_s", t, f"out of memory (limited to 2 GiB of {total / 2**30:.0f}): predict 4096² asked for "
               f"batch 64 × 1024² finished in {t:.2f} s{' on the CPU' if cpu else ' on the GPU'}; max |Δp| "
               f"{diff:.4f}, same class {same:.4%} of pixels")
        FIGURES["oom_max_diff"] = diff
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, 0)
        torch.cuda.empty_cache()


def part_3d() -> None:
    model = load_model(VOLUME_MODEL)
    sample = synth_volumes(1, 5000, shape=VOLUME)[0]
    spacing = sample.spacing
    t_pred = timed(lambda: predict(sample.image, model, device=DEV), 2)
    t_seg = timed(lambda: segment(sample.image, model, device=DEV, axes="ZYX", spacing=spacing), 1)
    vox = sample.image.size
    report("volume_predict_s", t_pred, f"3D {' × '.join(map(str, VOLUME))}: predict {t_pred:.2f} s ({vox / t_pred / 1e6:.1f} Mvox/s), "
           f"segment {t_seg:.2f} s")
    FIGURES["volume_segment_s"] = round(t_seg, 4)


def part_clicks() -> None:
    sample = nuclei_sample((2048, 2048), seed=3)
    segmenter = ClickSegmenter(sample.image, load_click_model(), device=DEV, segmentation_model=load_model())
    ids = np.unique(sample.labels)[1:]
    rng = np.random.default_rng(0)
    first, refine = [], []
    for obj in rng.choice(ids, 40, replace=False):
        ys, xs = np.nonzero(sample.labels == obj)
        c = Click(float(np.median(ys)), float(np.median(xs)))
        t = time.perf_counter()
        mask = segmenter.predict([c])
        sync()
        first.append(time.perf_counter() - t)
        t = time.perf_counter()
        segmenter.predict([c, Click(c.y + 2, c.x + 2)], mask)
        sync()
        refine.append(time.perf_counter() - t)
    for name, times in (("first", first[5:]), ("refine", refine[5:])):
        q = statistics.quantiles(times, n=20)
        report(f"click_{name}_p95_ms", q[-1] * 1e3, f"click on the GPU, {name}: p50 {statistics.median(times) * 1e3:.1f} ms,"
               f" p95 {q[-1] * 1e3:.1f} ms ({len(times)} clicks after 5 warm-up)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="segment,train,oom,3d,clicks")
    parser.add_argument("--json", help="write the figures to this JSON file")
    parser.add_argument("--device", default="cuda", help=argparse.SUPPRESS)
    args = parser.parse_args()
    global DEV, EDGES, VOLUME, TRAIN_SECONDS, BATCHES
    DEV = torch.device(args.device)
    if DEV.type == "cpu":
        print("device: cpu, a dry run of the script at small sizes")
        EDGES, VOLUME, TRAIN_SECONDS, BATCHES = (2048,), (16, 128, 128), 3.0, ((2, 64, 8),)
        for name in args.parts.split(","):
            {"segment": part_segment, "train": part_train, "oom": part_oom, "3d": part_3d, "clicks": part_clicks}[name]()
        return
    if not torch.cuda.is_available():
        raise SystemExit("bench_gpu needs a CUDA GPU; none is visible here (torch.cuda.is_available() is False)")
    props = torch.cuda.get_device_properties(DEV)
    FIGURES["device"] = f"{props.name}, {props.total_memory / 2**30:.0f} GiB, torch {torch.__version__}"
    print(f"device: {FIGURES['device']}, bf16 {torch.cuda.is_bf16_supported()}", flush=True)
    parts = {"segment": part_segment, "train": part_train, "oom": part_oom, "3d": part_3d, "clicks": part_clicks}
    for name in args.parts.split(","):
        t = time.perf_counter()
        try:
            parts[name]()
        except Exception as exc:  # one part failing still reports the others
            print(f"part {name} failed: {type(exc).__name__}: {exc}", flush=True)
            FIGURES[f"{name}_error"] = f"{type(exc).__name__}: {exc}"
        print(f"  (part {name}: {time.perf_counter() - t:.0f} s)", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(FIGURES, f, indent=1)


if __name__ == "__main__":
    main()
