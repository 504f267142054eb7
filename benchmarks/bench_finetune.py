"""Fine-tuning on corrections: what it learns, and the viewer while it trains (figures, no assertions).

    bash run.sh bench bench_finetune                  # all parts, CPU, under Xvfb if no display
    bash run.sh bench bench_finetune --write-docs     # also (re)write "Fine-tuning" in docs/benchmarks.md

(a) learning from edits: domain-shifted synthetic images (``SynthConfig().shifted()``:
    big, faint, textured nuclei) with at least 4 whole-ish objects in each half; the left
    half is "corrected" (annotated = left half, labels = ground truth there); fine-tune
    the shipped models for ``--seconds`` as the widget does (both networks, one budget,
    the widget's torch threads); AP@0.5 and click NoC@85 on the right half (never
    trained on) before -> after, mean over ``--seeds`` images.
(b) the viewer while the Fine-tune widget trains with default settings: event-loop
    stalls from a 10 ms QTimer probe, and steps/s against the same run without a viewer
    (``finetune()`` as the CLI runs it, and with the widget's thread count).
(c) press Fine-tune -> refreshed masks written into the layer, default settings.
(d) the real nuclei image (``real_data.real_nuclei_2d``): each half (left, right, top,
    bottom) corrected in turn (labels = ground truth there), both networks fine-tuned in
    ``--seconds`` as the widget does (held-out squares on), the budget on ``--clock``; the
    model the widget then puts in use (the new one only when the check finds it better)
    scored on the other half, AP@0.5 before -> after; the refresh's specks (new objects
    under the model's minimum size).
(e) the same image with only 1, 3, 8 or 16 objects corrected (on its left half, the
    objects nearest the half's centre, each with the widget's 8 px margin): AP@0.5 on the
    right half before -> after, and the quality figure the widget shows.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch
from _docs import cpu_description, write_section
from bench_ui import Probe  # the same probe as the Plugin section

from napari_unet import load_model, segment
from napari_unet._qt.demo import settle, wait_until
from napari_unet._qt.threads import gui_threads, torch_threads
from napari_unet.clicks.protocol import clicks_to_reach, interact
from napari_unet.clicks.segmenter import ClickSegmenter, load_click_model
from napari_unet.finetune.both import CLICK_SHARE, SEGMENTATION, finetune_both_iter
from napari_unet.finetune.quality import Quality
from napari_unet.finetune.regions import edited_region, merge_outside, object_changes, refresh_min_size
from napari_unet.finetune.segmentation import finetune_iter, training_zoom
from napari_unet.inference.instances import model_params
from napari_unet.labels import fraction_inside, object_sizes
from napari_unet.model.files import model_card
from napari_unet.progress import run
from napari_unet.synth.config import SynthConfig
from napari_unet.synth.images import synth_image
from napari_unet.training.metrics import average_precision


def task(seed: int, size: int):
    """A shifted image, its labels, and the left-half annotation mask."""
    s = synth_image(seed, (size, size), SynthConfig().shifted())
    annotated = np.zeros(s.labels.shape, bool)
    annotated[:, : size // 2] = True
    return s.image, s.labels, annotated


def usable(labels: np.ndarray, min_objects: int = 4, min_area: int = 100) -> bool:
    """Both halves hold enough objects for AP to mean something (not one cut sliver)."""
    half = labels.shape[1] // 2
    for part in (labels[:, :half], labels[:, half:]):
        if int((np.bincount(part.ravel())[1:] >= min_area).sum()) < min_objects:
            return False
    return True


def pick_seeds(n: int, size: int, first: int = 100) -> list[int]:
    seeds, seed = [], first
    while len(seeds) < n:
        if usable(task(seed, size)[1]):
            seeds.append(seed)
        seed += 1
    return seeds


def ap_right(model, image, labels) -> float:
    half = image.shape[1] // 2
    pred = segment(image[:, half:], model, device="cpu")
    return float(average_precision(labels[:, half:], pred, (0.5,))[0])


def noc_right(click_model, seg_model, image, labels, max_clicks: int = 20) -> tuple[float, float]:
    """NoC@85 and NoC@90 (standard protocol) over the objects wholly inside the right half,
    clicks answered as in the viewer (``seg_model`` answers lone first clicks).
    """
    half = image.shape[1] // 2
    segmenter = ClickSegmenter(image, click_model, device="cpu", segmentation_model=seg_model)
    ids = set(np.unique(labels[:, half:])) - set(np.unique(labels[:, :half])) - {0}
    ious = [interact(segmenter, labels == i, max_clicks, stop_iou=0.9) for i in sorted(ids)]
    return tuple(float(np.mean([clicks_to_reach(r, t, max_clicks) for r in ious])) for t in (0.85, 0.90))


def learn_from_edits(model, seeds: list[int], size: int, seconds: float, freeze_encoder: bool) -> list[dict]:
    """Both networks fine-tuned in one budget, as the widget does (the click network's share
    is ``CLICK_SHARE``); AP@0.5 and click NoC on the right half before -> after.
    """
    from dataclasses import replace

    from napari_unet.finetune.segmentation import FINETUNE_DEFAULTS

    config = replace(FINETUNE_DEFAULTS, freeze_encoder=freeze_encoder)
    click_model = load_click_model()
    rows = []
    for seed in seeds:
        image, labels, annotated = task(seed, size)
        before, noc_before = ap_right(model, image, labels), noc_right(click_model, model, image, labels)
        with torch_threads(gui_threads()):  # as in the widget: steady on a shared machine
            result = run(finetune_both_iter(model, click_model, [image], [labels], annotated=[annotated],
                                            max_seconds=seconds, device="cpu", config=config))
        seg, click = result.model, result.click
        after = ap_right(seg.model, image, labels)
        noc_after = noc_right(click.model if click else click_model, seg.model, image, labels)
        rows.append({"seed": seed, "before": before, "after": after, "steps": seg.steps,
                     "seconds": seg.seconds, "objects_left": len(np.unique(labels[annotated])) - 1,
                     "objects_right": len(np.unique(labels[~annotated])) - 1,
                     "noc_before": noc_before, "noc_after": noc_after, "click_steps": click.steps if click else 0})
        print(f"  seed {seed}: AP@0.5 right half {before:.3f} -> {after:.3f} ({seg.steps} steps in {seg.seconds:.0f} s); "
              f"click NoC@85 {noc_before[0]:.2f} -> {noc_after[0]:.2f} ({rows[-1]['click_steps']} steps)"
              + ("" if click else f" [click network not trained: {result.click_note}]"))
    return rows


def speed_without_viewer(model, image, labels, annotated, seconds: float, threads: int | None) -> float:
    """Steps per second of the same fine-tuning run outside any viewer."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        result = run(finetune_iter(model, [image], [labels], annotated=[annotated], max_seconds=seconds,
                                   device="cpu"))
    finally:
        torch.set_num_threads(before)
    return result.steps / result.seconds


def in_viewer(model, image, labels, seconds: float) -> dict:
    """Press Fine-tune (defaults, region = left half) with the probe running; time to new masks."""
    import napari

    from napari_unet._qt.finetune.annotations import REGION
    from napari_unet._qt.finetune.widget import FinetuneWidget
    from napari_unet._qt.session import session_for

    viewer = napari.Viewer(title="bench_finetune")
    viewer.window.resize(1400, 900)
    session_for(viewer).set_model(model, "shipped")
    h, w = image.shape
    viewer.add_image(image, name="img")
    shown = segment(image, model, device="cpu")  # what Segment gave ...
    shown[:, : w // 2] = 0
    shown = np.where(shown > 0, shown + labels.max(), 0)
    shown[:, : w // 2] = labels[:, : w // 2]  # ... with the left half corrected
    masks = viewer.add_labels(shown.astype(np.int32), name="img masks")
    viewer.add_shapes([np.array([[0, 0], [0, w // 2], [h, w // 2], [h, 0]])], name="corrected", opacity=0.2)
    widget = FinetuneWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Fine-tune")
    widget.mode.setCurrentText(REGION)
    widget.region.setCurrentText("corrected")
    widget.settings.budget.setValue(int(seconds))  # the default on the CPU is 60 s
    settle(1.0)  # first draws done before measuring
    records, trained = [], []
    before = masks.data.copy()
    probe = Probe()
    probe.start()
    t0 = time.perf_counter()
    widget.run_button.click()
    # the segmentation model's steps (the click network's turn follows; its steps are other work)
    widget._worker.yielded.connect(lambda step: step.stage == SEGMENTATION and step.record and records.append(step.record))
    widget._worker.returned.connect(lambda _: trained.append(time.perf_counter()))
    wait_until(lambda: not widget.running, 1800)
    settle(0.1)  # let the written layer draw
    to_masks = time.perf_counter() - t0
    stalls = probe.stop(split_at=trained[0] if trained else None)
    last = records[-1]
    out = {"to_masks": to_masks, "train_seconds": last.seconds, "steps": last.step,
           "steps_per_s": last.step / last.seconds, "changed": int((masks.data != before).sum()),
           "left_untouched": bool((masks.data[:, : w // 2] == before[:, : w // 2]).all()),
           "status": widget.status.text(), **stalls}
    viewer.close()
    return out


def real_runs(model, seconds: float, sides=("left", "right", "top", "bottom"), counts=(1, 3, 8, 16),
              clock: str = "wall") -> list[dict]:
    """(d) and (e) on the real image: one fine-tune per half, then per object count; ``clock``:
    what the budget counts (``TrainConfig.clock``; "cpu": the steps a dedicated machine would do).
    """
    from real_data import real_nuclei_2d

    image, truth = real_nuclei_2d()
    h, w = truth.shape
    click_model = load_click_model()
    shown = segment(image, model, device="cpu")  # what Segment gave before any correction
    rows = []
    for side in sides:
        corrected = np.zeros(truth.shape, bool)
        corrected[{"left": np.s_[:, : w // 2], "right": np.s_[:, w // 2 :], "top": np.s_[: h // 2],
                   "bottom": np.s_[h // 2 :]}[side]] = True
        rows.append(_real_run(model, click_model, image, truth, shown, corrected, ~corrected, seconds, side, clock))
    left = np.zeros(truth.shape, bool)
    left[:, : w // 2] = True
    for n in counts:
        corrected = edited_region(truth, _nearest_objects(truth, left, n), margin=8)
        rows.append(_real_run(model, click_model, image, truth, shown, corrected, ~left, seconds, f"{n} objects", clock))
    return rows


def _nearest_objects(truth: np.ndarray, half: np.ndarray, n: int) -> np.ndarray:
    """Pixels of the ``n`` objects wholly inside ``half`` nearest its centre."""
    from scipy import ndimage as ndi

    inside = fraction_inside(truth, half) == 1.0
    ids = np.flatnonzero(inside[1:] & (object_sizes(truth)[1:] > 0)) + 1
    centres = np.array(ndi.center_of_mass(np.ones(truth.shape), truth, ids))
    mid = np.array([np.mean(ax) for ax in np.nonzero(half)])
    picked = ids[np.argsort(np.linalg.norm(centres - mid, axis=1))[:n]]
    return np.isin(truth, picked)


def _real_run(model, click_model, image, truth, shown, corrected, scored, seconds, name, clock="wall") -> dict:
    """Fine-tune on ``corrected`` (ground truth there) as the widget does; AP@0.5 on the
    part ``scored`` (its bounding box) before -> after, with the model the widget puts in use.
    """
    box = tuple(slice(int(ix.min()), int(ix.max()) + 1) for ix in np.nonzero(scored))

    def ap(m) -> float:
        return float(average_precision(truth[box], segment(image[box], m, device="cpu"), (0.5,))[0])

    user = np.where(corrected, truth, np.where(shown > 0, shown + truth.max(), 0))  # the layer as corrected
    from dataclasses import replace

    from napari_unet.finetune.clicks import CLICK_FINETUNE_DEFAULTS
    from napari_unet.finetune.segmentation import FINETUNE_DEFAULTS

    with torch_threads(gui_threads()):
        result = run(finetune_both_iter(model, click_model, [image], [user], annotated=[corrected],
                                        max_seconds=seconds, device="cpu", validate=True,
                                        zoom=training_zoom([user]), config=replace(FINETUNE_DEFAULTS, clock=clock),
                                        click_config=replace(CLICK_FINETUNE_DEFAULTS, clock=clock)))
    tuned = result.model.model
    quality = Quality.from_dict(tuned.card.provenance["quality"])
    in_use = tuned if quality.better else model
    before, new = ap(model), ap(tuned)
    # the refresh (as the widget writes it): new objects under the minimum size, with and without the rule
    fresh = segment(image, in_use, device="cpu")
    params = model_params(model_card(in_use))
    smallest = refresh_min_size(user, params.min_size, params.min_relative_size)
    merged = merge_outside(user, fresh, corrected, min_size=smallest)
    unfiltered = merge_outside(user, fresh, corrected)
    row = {"name": name, "objects": int(len(np.unique(truth[corrected])) - 1), "steps": result.model.steps,
           "quality": quality, "better": quality.better, "before": before, "new": new,
           "after": new if quality.better else before, "min_size": smallest,
           "specks": _specks(user, merged, smallest), "specks_unfiltered": _specks(user, unfiltered, smallest),
           "changes": object_changes(user, merged)}
    n = quality.objects
    print(f"  {name}: {row['objects']} corrected, {row['steps']} steps; {quality.words()} (score "
          f"{quality.before.score(n):.3f} -> {quality.after.score(n):.3f}, AP@0.5 {quality.before.ap(n):.3f} -> "
          f"{quality.after.ap(n):.3f}); "
          f"{'new model in use' if quality.better else 'old model kept'}; AP@0.5 uncorrected part "
          f"{before:.3f} -> {row['after']:.3f} (new model: {new:.3f}); refresh {row['changes'].words()}, "
          f"specks {row['specks']} ({row['specks_unfiltered']} without the minimum size)", flush=True)
    return row


def _specks(before: np.ndarray, after: np.ndarray, min_size: int) -> int:
    """Objects of ``after`` under ``min_size`` px that ``before`` did not hold exactly."""
    sizes_after = object_sizes(after)
    sizes_before = object_sizes(before, minlength=sizes_after.size)[: sizes_after.size]
    small = (sizes_after > 0) & (sizes_after < min_size)
    small[0] = False
    return int((small & (sizes_before != sizes_after)).sum())


def real_table(args, real: list[dict]) -> list[str]:
    """(d) and (e) as a table, with the goals."""
    halves = [r for r in real if not r["name"].endswith("objects")]
    gains = [r["after"] - r["before"] for r in halves]
    lines = [
        f"Real image (512², 125 nuclei, a Data Science Bowl crop): corrected part = ground truth, both networks "
        f"fine-tuned in one {args.seconds:.0f} s budget as the widget does ({gui_threads()} torch threads, held-out "
        f"squares on, zoom from all the layer's masks; the budget on the {args.clock} clock"
        f"{': the steps a dedicated machine of that many cores would do' if args.clock == 'cpu' else ''}). "
        "\"in use\": the model the widget keeps: the new one only when "
        "the check (the held-out squares, or with fewer than 16 objects the corrected objects themselves) finds it "
        "better. AP@0.5 on the uncorrected part (the other half; for 1-16 objects the right half). Specks: "
        "objects the refresh would add under the model's minimum size.", "",
        "| corrected | objects | steps | the widget's quality figure | model in use | AP@0.5 before | after "
        "(in use) | new model's AP | refresh | specks (without the rule) |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *[f"| {r['name']} | {r['objects']} | {r['steps']} | {r['quality'].words()} | "
          f"{'new' if r['better'] else 'old (kept)'} | {r['before']:.3f} | {r['after']:.3f} | {r['new']:.3f} | "
          f"{r['changes'].words()} | {r['specks']} ({r['specks_unfiltered']}) |" for r in real],
    ]
    if halves:
        lines += ["", f"Four halves: {sum(g >= 0 for g in gains)} of {len(gains)} at least as good after "
                  f"(goal: all), mean gain {np.mean(gains):+.3f} (goal ≥ +0.05); the new model alone would "
                  f"have given {np.mean([r['new'] - r['before'] for r in halves]):+.3f}."]
    return lines


def report(model_name: str, args, rows: list[dict], frozen: list[dict], ui: dict | None, speeds: dict,
           real: list[dict] | None = None) -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [f"{model_name[0].upper()}{model_name[1:]}; CPU: {cpu_description()} (shared with other "
             f"jobs), torch {torch.__version__} on the CPU; load average at the end: {load:.1f}.", ""]
    if real:
        lines += [*real_table(args, real), ""]
    if rows:
        b, a = np.mean([r["before"] for r in rows]), np.mean([r["after"] for r in rows])
        lines += [
            f"Learning from edits: {len(rows)} shifted synthetic images of {args.size}², left half corrected, "
            f"both networks fine-tuned in one {args.seconds:.0f} s budget each from the shipped models, as the "
            f"widget does (the segmentation model first, the click network the last {CLICK_SHARE:.0%}; "
            f"{gui_threads()} torch thread{'s' * (gui_threads() != 1)}, as in the viewer). AP@0.5 of the automatic model on the right half "
            "(never trained on), and clicks to IoU 0.85 (standard protocol, ≤ 20 clicks) on the objects wholly "
            "inside it, answered as in the viewer (the segmentation model, before or after fine-tuning, answers a "
            "lone first click; the click network the rest). Images whose halves hold fewer than 4 objects of "
            "100 px are skipped (one cut sliver "
            "would make AP 0 or 1).", "",
            "| image (seed) | objects left / right | steps (segmentation / click) | AP@0.5 right half before | after "
            "| NoC@85 right half before | after |",
            "|---|---|---|---|---|---|---|",
            *[f"| {r['seed']} | {r['objects_left']} / {r['objects_right']} | {r['steps']} / {r['click_steps']} | "
              f"{r['before']:.3f} | {r['after']:.3f} | {r['noc_before'][0]:.2f} | {r['noc_after'][0]:.2f} |"
              for r in rows],
            f"| **mean** | | | **{b:.3f}** | **{a:.3f}** (gain {a - b:+.3f}; target ≥ +0.15 below 0.7) | "
            f"**{np.mean([r['noc_before'][0] for r in rows]):.2f}** | **{np.nanmean([r['noc_after'][0] for r in rows]):.2f}** |",
        ]
        if frozen:
            fa = np.mean([r["after"] for r in frozen])
            lines += ["", f"Same runs with the encoder frozen: mean AP@0.5 after {fa:.3f} "
                      f"({np.mean([r['steps'] for r in frozen]):.0f} steps on average)."]
    if ui:
        lines += [
            "", f"| the Fine-tune widget, {args.ui_seconds:.0f} s budget (the CPU default: 60 s) | value | target |", "|---|---|---|",
            f"| event-loop stall while training: p99 / max | {ui['p99']:.0f} / {ui.get('max_before', ui['max']):.0f} ms "
            f"({ui['over_50']} of {ui['ticks']} ticks over 50 ms) | p99 ≤ 50 ms |",
            f"| ... worst stall after training (new masks predicted and written) | {ui.get('max_after', 0):.0f} ms | |",
            f"| training speed in the viewer (the segmentation model's turn, {gui_threads()} torch threads) | {ui['steps_per_s']:.2f} steps/s | |",
            f"| same run, no viewer, torch's default {speeds['default_threads']} threads (CLI) | "
            f"{speeds['cli']:.2f} steps/s (viewer x{speeds['cli'] / ui['steps_per_s']:.2f} slower) | ≤ x1.3 |",
            f"| same run, no viewer, {gui_threads()} threads | {speeds['gui']:.2f} steps/s "
            f"(viewer x{speeds['gui'] / ui['steps_per_s']:.2f}) | |",
            f"| press Fine-tune -> refreshed masks on screen | {ui['to_masks']:.0f} s "
            f"({args.ui_seconds:.0f} s budget: {ui['train_seconds']:.0f} s the segmentation model, then the click network) | ≤ 90 s |",
            f"| corrected left half left as it was | {'yes' if ui['left_untouched'] else 'NO'} "
            f"({ui['changed']} pixels refreshed on the right) | |",
        ]
    lines += ["", *NOTES]
    return "\n".join(lines)


NOTES = [
    "How to read it:",
    "",
    "- Steps per minute decide the gain: the defaults (`FINETUNE_DEFAULTS`: 128² patches, no",
    "  elastic/affine/blur/noise jitter, BatchNorm statistics kept) were chosen in an exploration",
    "  with the interim model (3 images, equal compute): 256² patches with the generalist augmentation",
    "  left AP@0.5 at 0.11 after 30 steps (before: 0.14); 128² patches reached 0.22 in 120 steps of the",
    "  same cost; letting BatchNorm statistics adapt did not help (0.22 vs 0.36 kept); freezing the",
    "  encoder made steps 25% cheaper but learnt less (0.17). With the shipped model and 60 s runs on",
    "  6 images, light augmentation beat the generalist one (mean AP@0.5 0.29 vs 0.15; before 0.07).",
    "  Gains vary a lot between images: AP over 4-12 objects moves in steps of 0.1.",
    "- The rate: lr 1e-3 (the exploration's) swung the real image's uncorrected half from AP@0.5",
    "  0.81 to 0.73, 0.93 and 0.83 after 2, 4 and 40 steps; 3e-4, warmed up over 10 steps (not a",
    "  share of the time), gave 0.90, 0.87, 0.87 after 10, 20, 40: the default since.",
    "- Torch threads: on this shared 2-core machine, training with 2 threads (torch's default, the",
    "  CLI's) was several times slower than with 1 whenever other jobs ran in another session",
    "  (a Linux autogroup gets its share whatever its nice value); the viewer trains on every core",
    "  with its worker thread at nice 10 (Linux), so the UI thread still gets a core at once.",
    "- Stalls are gaps between ticks of a 10 ms QTimer minus the period, under Xvfb with software",
    "  OpenGL, while the widget trains (loss plot and progress bar redrawn every step).",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="model file (default: the shipped model)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seeds", type=int, default=3, help="images for (a)")
    parser.add_argument("--seconds", type=float, default=60.0, help="fine-tuning budget for (a)")
    parser.add_argument("--ui-seconds", type=float, default=60.0, help="budget for (b), (c): the default")
    parser.add_argument("--parts", default="abcde", help="which of a-e to run (b and c, d and e run together)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="cpu",
                        help="what the budgets of (d) and (e) count: wall-clock seconds (as the widget), or this "
                        "process's CPU seconds per thread (the same steps however busy a shared machine is)")
    parser.add_argument("--frozen", action="store_true", help="(a) again with the encoder frozen")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()

    model = load_model(args.model)
    name = f"model {args.model}" if args.model else "the shipped nuclei model"
    seeds = pick_seeds(args.seeds, args.size)
    real = real_runs(model, args.seconds, sides=("left", "right", "top", "bottom") if "d" in args.parts else (),
                     counts=(1, 3, 8, 16) if "e" in args.parts else (), clock=args.clock)
    rows = learn_from_edits(model, seeds, args.size, args.seconds, False) if "a" in args.parts else []
    frozen = learn_from_edits(model, seeds, args.size, args.seconds, True) if "a" in args.parts and args.frozen else []
    ui, speeds = None, {}
    if "b" in args.parts or "c" in args.parts:
        image, labels, annotated = task(seeds[0], args.size)
        speeds["default_threads"] = torch.get_num_threads()
        cli = [speed_without_viewer(model, image, labels, annotated, args.ui_seconds, None)]
        ui = in_viewer(model, image, labels, args.ui_seconds)
        cli.append(speed_without_viewer(model, image, labels, annotated, args.ui_seconds, None))
        speeds["cli"] = float(np.mean(cli))
        speeds["gui"] = speed_without_viewer(model, image, labels, annotated, args.ui_seconds, gui_threads())
        print(ui["status"])
    text = report(name, args, rows, frozen, ui, speeds, real)
    print(text)
    if args.write_docs:
        flags = " ".join(a for a in sys.argv[1:] if a != "--write-docs")
        command = f"bash run.sh bench bench_finetune {flags} --write-docs".replace("  ", " ")
        write_section("Fine-tuning", f"Measured with `{command}` (benchmarks/bench_finetune.py).\n\n{text}")


if __name__ == "__main__":
    main()
