"""New task: tissue classes from a few painted slices, or a new kind of object from a few labelled ones.

    nice -n 10 .venv/bin/python benchmarks/bench_new_task.py [--slices 1 3 5 10] [--minutes 1 3]
        [--clock cpu] [--planes every-class|even] [--seeds 0 1 2 3] [--write-docs]
    nice -n 10 .venv/bin/python benchmarks/bench_new_task.py --task instances [--objects 10] [--minutes 3]
        [--clock cpu] [--write-docs]

A generated abdomen-like MR phantom (napari_unet.synth.phantom, seed 0, 40 x 160 x 160 at
3 x 1 x 1 mm) has N evenly spaced slices labelled (body, organ, fluid, lesion; background is
label 0 on those slices) and `napari_unet.train(..., task="semantic")` trains a model from
them within the budget. Dice per class is measured on the slices nobody labelled and on a
held-out phantom (seed 100, whole volume). The classical pipeline is multi-Otsu thresholds
(one band per class, each band named by the class it matches best on the labelled slices)
followed by connected components (the body filled, specks under 30 voxels merged into the
body). ``--clock cpu`` counts the budget in this process's CPU seconds per torch thread: what a
dedicated machine of that many cores would take, when the machine is shared.

Slices are painted as a user would: evenly spaced, but each class on at least one of them
(``--planes even`` keeps them evenly spaced: with 5 slices the lesion is then on none, and
no model can learn a class it was never shown).

``--task instances``: a kind of object the shipped nuclei model is not made for, large cells
with a dark nucleus (the generated nuclei images, ~28-40 px objects, each darkened in its
inner half). A window of one image holding ``--objects`` objects is labelled (every object
in it, the rest of the image unannotated) and ``napari_unet.train(..., task="instances")``
trains on from the shipped model; AP@0.5 of the new model and of the shipped one on held-out
images (seeds 100-107, 256 x 256).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from _docs import cpu_description, write_section
from scipy import ndimage as ndi
from skimage.filters import threshold_multiotsu

from napari_unet import segment
from napari_unet.progress import run
from napari_unet.synth.config import SynthConfig
from napari_unet.synth.images import synth_image
from napari_unet.synth.phantom import CLASSES, synth_phantom
from napari_unet.training.metrics import average_precision
from napari_unet.training.tasks import train_iter

TRAIN_SEED, TEST_SEED = 0, 100
RESULTS = Path("/tmp/bench_new_task.json")
# large cells (28-40 px), dim inclusions and rims turned down: their dark nucleus is the feature
CELLS = replace(SynthConfig(), size=(28.0, 40.0), coverage=(0.25, 0.4), spots=(0.0, 0.1), rim=(0.0, 0.1),
                dtype_weights=(0.0, 0.0, 0.0, 1.0))
CELL_TEST_SEEDS = range(100, 108)


def dice(pred: np.ndarray, true: np.ndarray) -> list[float]:
    """Dice of each class 1..4 (1.0 where a class is absent from both)."""
    out = []
    for k in CLASSES:
        a, b = pred == k, true == k
        total = a.sum() + b.sum()
        out.append(1.0 if total == 0 else float(2 * (a & b).sum() / total))
    return out


def labelled_planes(n: int, depth: int) -> np.ndarray:
    """``n`` evenly spaced planes, away from the volume's ends."""
    return np.unique(np.linspace(0.15 * depth, 0.85 * depth - 1, n).round().astype(int))


def painted_planes(n: int, labels: np.ndarray, every_class: bool = True) -> np.ndarray:
    """The planes a user paints: evenly spaced, and with ``every_class`` moved so each class is on one.

    A user who wants a lesion found paints a slice through it. Rarest class first, the evenly
    spaced plane nearest to the class's widest plane moves there (a plane already moved for a
    class stays); with fewer planes than missing classes the rarest ones are served.
    """
    planes = labelled_planes(n, labels.shape[0])
    if not every_class:
        return planes
    area = np.stack([(labels == k).sum(axis=(1, 2)) for k in CLASSES])  # (class, plane) voxels
    kept: set[int] = set()
    for k in np.argsort(area.sum(axis=1)):  # rarest first
        if area[k].sum() == 0 or area[k, planes].any():
            continue
        free = [i for i, z in enumerate(planes) if z not in kept]
        if not free:
            break
        widest = int(np.argmax(area[k]))
        i = min(free, key=lambda i: abs(planes[i] - widest))
        planes[i] = widest
        kept.add(widest)
    return np.unique(planes)


def classical(image: np.ndarray, train_image: np.ndarray, painted: np.ndarray, planes: np.ndarray) -> np.ndarray:
    """Multi-Otsu bands named by the labelled slices' majority class, then connected components."""
    n = len(CLASSES) + 1

    def bands(x):
        return np.digitize(x, threshold_multiotsu(x[::2, ::2, ::2], classes=n, nbins=64))  # 256 bins: minutes

    train_bands, truth = bands(train_image)[planes], painted[planes]
    sizes = np.bincount(truth.ravel(), minlength=n)
    # each band is named by the class it matches best (its Dice with the class on the labelled slices)
    joint = np.array([np.bincount(truth[train_bands == b], minlength=n) for b in range(n)])
    band_sizes = joint.sum(axis=1, keepdims=True)
    names = np.argmax(2 * joint / np.maximum(band_sizes + sizes[None], 1), axis=1)
    out = names[bands(image)]
    body = ndi.binary_fill_holes(out > 0)
    parts, count = ndi.label(body)
    if count:
        body = parts == (np.argmax(np.bincount(parts.ravel())[1:]) + 1)  # the largest piece is the body
    out = np.where(body, np.maximum(out, 1), 0)
    for k in (2, 3, 4):  # specks of a class become body
        parts, count = ndi.label(out == k)
        sizes = np.bincount(parts.ravel())
        out[(sizes < 30)[parts] & (parts > 0)] = 1
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, nargs="+", default=[1, 3, 5, 10], help="classes: painted slices")
    parser.add_argument("--minutes", type=float, nargs="*", default=[1, 3], help="none: the classical pipeline only")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    parser.add_argument("--planes", choices=("every-class", "even"), default="every-class",
                        help="even: evenly spaced only (with 5 slices the lesion is on none of them)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="classes: one model per training seed (sampling and initialisation)")
    parser.add_argument("--note", default="", help="what else was running (for the docs)")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--task", choices=("classes", "instances"), default="classes")
    parser.add_argument("--objects", type=int, default=10, help="instances: labelled objects to train from")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.task == "instances":
        return objects(args)
    train, test = synth_phantom(TRAIN_SEED), synth_phantom(TEST_SEED)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for n in args.slices:
        planes = painted_planes(n, train.labels, args.planes == "every-class")
        rest = np.setdiff1d(np.arange(train.labels.shape[0]), planes)
        painted = np.zeros_like(train.labels)
        painted[planes] = train.labels[planes]
        mode = "" if args.planes == "every-class" else " even"  # keys of the two plane choices kept apart
        key = f"classical {n}{mode}"
        results[key] = {"unlabelled": dice(classical(train.image, train.image, painted, planes)[rest],
                                           train.labels[rest]),
                        "held_out": dice(classical(test.image, train.image, painted, planes), test.labels)}
        print(key, np.round(results[key]["unlabelled"], 3), np.round(results[key]["held_out"], 3), flush=True)
        for minutes, seed in ((m, s) for m in args.minutes for s in args.seeds):
            wall = time.perf_counter()
            job = train_iter(train.image, painted, spacing=train.spacing, classes=train.classes,
                             max_seconds=60 * minutes, device="cpu", clock=args.clock, seed=seed)
            model = run(job)
            wall = time.perf_counter() - wall
            steps = model.card.provenance["steps"]
            own = segment(train.image, model, spacing=train.spacing, device="cpu")
            held = segment(test.image, model, spacing=test.spacing, device="cpu")
            key = f"unet {n} {minutes:g}{mode}" + (f" seed {seed}" if seed else "")
            results[key] = {"unlabelled": dice(own[rest], train.labels[rest]), "held_out": dice(held, test.labels),
                            "steps": steps, "wall_s": round(wall), "clock": args.clock}
            print(key, steps, "steps", f"{wall:.0f} s wall", np.round(results[key]["unlabelled"], 3),
                  np.round(results[key]["held_out"], 3), flush=True)
            RESULTS.write_text(json.dumps(results, indent=1))
    RESULTS.write_text(json.dumps(results, indent=1))
    body = table(results, args)
    print(body)
    if args.write_docs:
        write_section("New task: classes from a few slices", body)


def cells(seed: int, shape: tuple[int, int] = (256, 256)) -> tuple[np.ndarray, np.ndarray]:
    """A generated image of large cells with a dark nucleus (float32) and its cell labels."""
    s = synth_image(seed, shape, CELLS)
    depth = ndi.distance_transform_edt(s.labels > 0)
    deepest = ndi.maximum(depth, s.labels, index=np.arange(s.labels.max() + 1))
    inner = depth > 0.5 * np.maximum(np.asarray(deepest)[s.labels], 1)  # the inner half of each cell
    return (s.image.astype(np.float32) * np.where(inner, 0.3, 1.0)).astype(np.float32), s.labels


def labelled_window(labels: np.ndarray, count: int) -> np.ndarray:
    """The annotated mask of the smallest centred square holding ``count`` objects (all of them labelled)."""
    h, w = labels.shape
    for half in range(16, max(h, w) // 2 + 1, 4):
        window = np.zeros(labels.shape, bool)
        window[max(0, h // 2 - half):h // 2 + half, max(0, w // 2 - half):w // 2 + half] = True
        if np.unique(labels[window & (labels > 0)]).size >= count:
            return window
    return np.ones(labels.shape, bool)


def objects(args) -> None:
    """A new model for large cells with a dark nucleus, from ``args.objects`` labelled ones, vs the shipped one."""
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    test = [cells(seed) for seed in CELL_TEST_SEEDS]
    shipped = [average_precision(lab, segment(img, None, device="cpu"), (0.5,))[0] for img, lab in test]
    results["objects shipped"] = {"ap50": shipped}
    print("shipped nuclei model AP@0.5", np.round(np.mean(shipped), 3), np.round(shipped, 2), flush=True)
    image, labels = cells(TRAIN_SEED)
    window = labelled_window(labels, args.objects)
    painted = np.where(window, labels, 0)
    count = np.unique(painted[painted > 0]).size
    for minutes in args.minutes:
        wall = time.perf_counter()
        model = run(train_iter(image, painted, task="instances", annotated=window, max_seconds=60 * minutes,
                               device="cpu", clock=args.clock))
        wall = time.perf_counter() - wall
        new = [average_precision(lab, segment(img, model, device="cpu"), (0.5,))[0] for img, lab in test]
        key = f"objects new {count} {minutes:g}"
        results[key] = {"ap50": new, "steps": model.card.provenance["steps"], "wall_s": round(wall),
                        "clock": args.clock, "window": int(window.sum(axis=1).max())}
        print(key, results[key]["steps"], "steps", f"{wall:.0f} s wall", "AP@0.5", np.round(np.mean(new), 3),
              np.round(new, 2), flush=True)
        RESULTS.write_text(json.dumps(results, indent=1))
    body = objects_table(results, args)
    print(body)
    if args.write_docs:
        write_section("New task: a new kind of object from a few labelled ones", body)


def objects_table(results: dict, args) -> str:
    """The docs section of ``--task instances``: AP@0.5 of the shipped model and of each new one."""
    rows = ["| model | labelled objects | budget | steps | AP@0.5 (mean of 8 images) |", "|---|---|---|---|---|"]
    shipped = results.get("objects shipped")
    if shipped:
        rows.append(f"| shipped nuclei model | - | - | - | {np.mean(shipped['ap50']):.3f} |")
    for key, r in results.items():
        if key.startswith("objects new"):
            _, _, count, minutes = key.split()
            rows.append(f"| new model (`napari_unet.train(..., task=\"instances\")`) | {count} | {minutes} min | "
                        f"{r['steps']} | **{np.mean(r['ap50']):.3f}** |")
    clock = "CPU seconds per torch thread" if args.clock == "cpu" else "wall-clock seconds"
    return "\n".join([
        "`nice -n 10 .venv/bin/python benchmarks/bench_new_task.py --task instances --clock cpu`: generated "
        "images of large cells (28-40 px) with a dark nucleus, a kind the shipped nuclei model is not made for. "
        "A centred window of one image holding the given number of objects is labelled (the rest unannotated); "
        "the new model trains on from the shipped one. AP@0.5 on 8 held-out images (seeds 100-107, 256×256).",
        "",
        f"Machine: {cpu_description()}, torch on the CPU with {args.threads} threads; budgets in {clock}. {args.note}",
        "",
        *rows,
    ])


def table(results: dict, args) -> str:
    """The docs section: one row per (method, slices, budget), Dice per class and the mean."""
    names = " | ".join(CLASSES.values())
    rows = [f"| method | labelled slices | budget | steps | {names} | mean | held-out mean |",
            "|---|---|---|---|" + "---|" * len(CLASSES) + "---|---|"]
    rows_in = {k: r for k, r in results.items() if not k.startswith("objects")}
    for key, r in sorted(rows_in.items(), key=lambda kv: (int(kv[0].split()[1]), kv[0])):
        parts = key.split()
        seed = parts[parts.index("seed") + 1] if "seed" in parts else None
        parts = parts[: parts.index("seed")] if seed else parts
        method = "U-Net (`napari_unet.train`)" if parts[0] == "unet" else "multi-Otsu + components"
        method += f", seed {seed}" if seed else ""
        budget = f"{parts[2]} min" if parts[0] == "unet" else "-"
        method += " (evenly spaced slices)" if parts[-1] == "even" else ""
        per = " | ".join(f"{d:.3f}" for d in r["unlabelled"])
        rows.append(f"| {method} | {parts[1]} | {budget} | {r.get('steps', '-')} | {per} | "
                    f"**{np.mean(r['unlabelled']):.3f}** | {np.mean(r['held_out']):.3f} |")
    clock = ("CPU seconds per torch thread (`--clock cpu`: what a dedicated 2-core machine takes; "
             "the shared machine took longer in wall time)") if args.clock == "cpu" else "wall-clock seconds"
    return "\n".join([
        "`nice -n 10 .venv/bin/python benchmarks/bench_new_task.py` (benchmarks/bench_new_task.py): a generated "
        "abdomen-like MR phantom (napari_unet.synth.phantom, seed 0, 40×160×160 voxels of 3×1×1 mm) with N "
        + ("evenly spaced slices labelled, moved so that each class is on one of them (as a user paints a slice "
           "through the lesion they want found); " if args.planes == "every-class" else
           "evenly spaced slices labelled (`--planes even`: with 5 the lesion is on none); ")
        + "`napari_unet.train(image, painted, task=\"semantic\", spacing=...)` "
        "plans and trains a model within the budget; Dice per class on the slices nobody labelled "
        "(and the mean Dice on a held-out phantom, seed 100). The classical pipeline: multi-Otsu bands, "
        "each named by the class it matches best (Dice) on the same labelled slices, then connected components.",
        "",
        f"Machine: {cpu_description()}, torch on the CPU with {args.threads} threads; budgets in {clock}. "
        f"{args.note}",
        "",
        *rows,
        "",
        "Goal: 5 labelled slices and 3 minutes of CPU give mean Dice ≥ 0.90 and beat the classical pipeline "
        "on every class.",
    ])


if __name__ == "__main__":
    main()
