"""Click-to-segment: quality with the standard protocol, cost per click, and the viewer.

    bash run.sh bench bench_click                 # all parts (the viewer under Xvfb if no display)
    bash run.sh bench bench_click --write-docs    # also (re)write "Click-to-segment" in docs/benchmarks.md
    bash run.sh bench bench_click --parts quality # only NoC (no Qt)

Measures, on the CPU, with the shipped click model (napari_unet/model/weights/nuclei_click.safetensors)
and, answering lone first clicks as in the viewer, the shipped nuclei model:
- quality on held-out synthetic images (default generator settings, seeds never used
  in training): the simulated user of :mod:`napari_unet.clicks.protocol` clicks up to 20 times
  per object; NoC@85 / NoC@90 are the mean clicks to reach IoU 0.85 / 0.90 (also with
  the click network alone, on the same objects);
- the core's cost per click against the image size (normalising once, then crops);
- in the viewer, a 2048² image: click -> mask in the Labels layer, clicked one by one
  (p50 / p95), and a burst of clicks on different objects 40 ms apart while a 10 ms
  QTimer probe records event-loop stalls; every click must end up as an object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _docs import click_backend, cpu_description, write_section
from bench_ui import Probe

from napari_unet._qt.demo import settle, wait_until
from napari_unet._qt.threads import gui_threads
from napari_unet.clicks.protocol import click_objects, clicks_to_reach, iou, next_click
from napari_unet.clicks.segmenter import ClickSegmenter, farthest_point, load_click_model
from napari_unet.clicks.types import Click
from napari_unet.model.files import CLICK_MODEL, load_model
from napari_unet.synth.images import synth_dataset
from napari_unet.synth.sample import nuclei_sample

HELD_OUT_SEED = 2024  # training draws its pool from seed 1
SIZE_BINS = ((0, 10), (10, 25), (25, 1000))  # equivalent diameter, px


def held_out_objects(n_images: int, per_image: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(image, labels, object ids) of generated images never used in training or selection."""
    rng = np.random.default_rng(0)
    out = []
    for sample in synth_dataset(n_images, HELD_OUT_SEED, (256, 256)):
        ids = np.unique(sample.labels)[1:]
        out.append((sample.image, sample.labels, rng.choice(ids, size=min(per_image, ids.size), replace=False)))
    return out


def real_objects(as_given: bool = False) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The real nuclei image (benchmarks/real_data.py) with every one of its nuclei: its
    annotated 511² part (see ``real_data.annotated_part``), or ``as_given`` the whole 512².
    """
    from real_data import annotated_part, real_nuclei_2d

    image, labels = real_nuclei_2d() if as_given else annotated_part(*real_nuclei_2d())
    return [(image, labels, np.unique(labels)[1:])]


def bench_quality(images, max_clicks: int = 20, model_path: str | None = None, seg_path: str | None = None,
                  net_only: bool = False) -> dict:
    """NoC as the viewer answers clicks (the segmentation model answers lone first clicks) on
    ``images`` ((image, labels, ids) each); on the same objects an oracle answering every later
    click by fixing the whole error region under it (under ``"oracle"``: how far better
    corrections alone could take the first masks), and with ``net_only`` the click network
    alone (under ``"net_only"``).
    """
    model, seg_model = load_click_model(model_path), load_model(seg_path)
    rows, alone, oracle, cut = [], [], [], []  # (diameter, ious); whether the image's edge cuts the object
    for image, labels, ids in images:
        segmenter = ClickSegmenter(image, model, device="cpu", segmentation_model=seg_model)
        rows += click_objects(segmenter, labels, ids, max_clicks, stop_iou=0.9)
        rim = np.ones(labels.shape, bool)
        rim[1:-1, 1:-1] = False
        cut += [bool(np.any(labels[rim] == obj)) for obj in ids]
        if net_only:
            alone += click_objects(ClickSegmenter(image, model, device="cpu"), labels, ids, max_clicks, stop_iou=0.9)
        for obj in ids:
            target = labels == obj
            first = segmenter.predict([Click(*farthest_point(target))]).full()
            oracle.append((2 * np.sqrt(target.sum() / np.pi), fix_regions(first, target, max_clicks)))
    out = {**_noc_figures(rows, max_clicks), "images": len(images), "oracle": _noc_figures(oracle, max_clicks),
           "cut": [(len(part), _mean_noc(part, 0.85, max_clicks), _mean_noc(part, 0.90, max_clicks))
                   for part in ([r for r, c in zip(rows, cut) if c == edge] for edge in (True, False))]}
    if net_only:
        out["net_only"] = _noc_figures(alone, max_clicks)
    return out


def fix_regions(mask: np.ndarray, target: np.ndarray, max_clicks: int) -> list[float]:
    """IoUs of a perfect corrector: from ``mask`` (the first click's answer), each click of
    the protocol makes the whole connected error region under it right, and nothing else.
    """
    from scipy import ndimage as ndi

    ious = [iou(mask, target)]
    while len(ious) < max_clicks and ious[-1] < 0.9:
        click = next_click(mask, target)
        if click is None:
            break
        error = (target & ~mask) if click.positive else (mask & ~target)
        parts, _ = ndi.label(error)
        region = parts == parts[click.y, click.x]
        mask = mask | region if click.positive else mask & ~region
        ious.append(iou(mask, target))
    return ious


def _mean_noc(rows, threshold: float, max_clicks: int) -> float:
    """Mean NoC at ``threshold`` of ``rows`` ((diameter, ious) each); NaN for none."""
    return float(np.mean([clicks_to_reach(i, threshold, max_clicks) for _, i in rows])) if rows else float("nan")


def _interval(values, paired_with=None, draws: int = 4000) -> tuple[float, float]:
    """95 % interval of the mean of ``values`` (minus ``paired_with``, object by object), the
    objects resampled with replacement: how much the figure depends on which objects were drawn.
    """
    v = np.asarray(values, float) - (0.0 if paired_with is None else np.asarray(paired_with, float))
    means = v[np.random.default_rng(0).integers(v.size, size=(draws, v.size))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _noc_figures(rows, max_clicks: int) -> dict:
    each85 = [clicks_to_reach(i, 0.85, max_clicks) for _, i in rows]

    def noc(t, sel=None):
        return _mean_noc([r for r in rows if sel is None or sel[0] <= r[0] < sel[1]], t, max_clicks)
    def dice(k):  # the user stops once IoU 0.9 is reached: later clicks keep the last IoU
        return float(np.mean([2 * v / (1 + v) for v in (i[min(k, len(i)) - 1] for _, i in rows)]))
    return {
        "objects": len(rows),
        "noc85": noc(0.85), "noc90": noc(0.90),
        "each85": each85, "interval85": _interval(each85),
        "dice": [dice(k) for k in (1, 3, 5)],
        "iou1": float(np.mean([i[0] for _, i in rows])),
        "fail85": float(np.mean([max(i) < 0.85 for _, i in rows])),
        "fail90": float(np.mean([max(i) < 0.90 for _, i in rows])),
        "bins": [(lo, hi, sum(lo <= d < hi for d, _ in rows), noc(0.85, (lo, hi)), noc(0.90, (lo, hi)))
                 for lo, hi in SIZE_BINS],
    }


def bench_core(sizes=(512, 2048, 4096), clicks: int = 20) -> list[tuple[int, float, float]]:
    model, seg_model = load_click_model(), load_model()
    out = []
    for size in sizes:
        sample = nuclei_sample((size, size), seed=5)
        t = time.perf_counter()
        segmenter = ClickSegmenter(sample.image, model, device="cpu", segmentation_model=seg_model)
        prepare = time.perf_counter() - t
        points = _object_points(sample.labels, clicks)
        segmenter.predict([Click(*points[0])])  # warm-up
        times = []
        for p in points:
            t = time.perf_counter()
            segmenter.predict([Click(*p)])
            times.append(time.perf_counter() - t)
        out.append((size, prepare, float(np.median(times))))
    return out


def _object_points(labels: np.ndarray, n: int) -> list[tuple[int, int]]:
    """Centres (farthest-from-border points) of ``n`` objects spread over the image."""
    ids = np.unique(labels)[1:]
    picked = ids[np.linspace(0, ids.size - 1, n).astype(int)]
    from scipy import ndimage as ndi

    boxes = ndi.find_objects(labels)
    points = []
    for i in picked:
        ys, xs = boxes[i - 1]
        y, x = farthest_point(labels[ys, xs] == i)
        points.append((ys.start + y, xs.start + x))
    return points


STAGES = ("press handled (UI thread)", "pass started", "core answered", "written into the layer", "drawn")


def bench_viewer(size: int, n_single: int, n_burst: int, rest_ms: int = 200) -> dict:
    """Press -> mask drawn in a real viewer, stage by stage: each object hovered for ``rest_ms``
    (a person aiming) then clicked, and clicked with no rest (the cursor jumps and clicks);
    then a burst of clicks while a QTimer probe records event-loop stalls.
    """
    import napari
    from napari.utils._test_utils import read_only_mouse_event
    from napari.utils.interactions import mouse_move_callbacks, mouse_press_callbacks, mouse_release_callbacks
    from qtpy.QtCore import QTimer

    from napari_unet._qt._napari import scene_canvas
    from napari_unet._qt.click.widget import ClickWidget

    sample = nuclei_sample((size, size), seed=5)
    points = _object_points(sample.labels, 2 * n_single + n_burst + 1)
    backend = click_backend((load_click_model(), load_model()))
    viewer = napari.Viewer(title="bench_click")
    viewer.window.resize(1400, 900)
    viewer.add_image(sample.image, name="bench")
    widget = ClickWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Click")
    widget.toggle.setChecked(True)
    tool = widget.tool
    wait_until(lambda: not tool.busy, 60)  # the image is normalised when click mode starts
    settle()

    def event(kind, point):
        return read_only_mouse_event(type=kind, button=1, position=tuple(float(c) for c in point),
                                     pos=np.zeros(2), dims_displayed=[0, 1])

    def click(point):
        mouse_press_callbacks(viewer, event("mouse_press", point))
        mouse_release_callbacks(viewer, event("mouse_release", point))

    drawn_at: dict[str, float] = {}  # the first frame drawn after the mask was written

    def drawn(_event):
        if "written" in tool.stamps:
            drawn_at.setdefault("drawn", time.perf_counter())

    scene_canvas(viewer).events.draw.connect(drawn)

    def one(point, rest_ms: int) -> list[float]:
        """Seconds from the mouse press to the end of each stage (see STAGES)."""
        mouse_move_callbacks(viewer, event("mouse_move", point))
        settle(rest_ms / 1000)
        tool.stamps = {}
        drawn_at.clear()
        t = time.perf_counter()
        click(point)
        handled = time.perf_counter()
        wait_until(lambda: not tool.busy and "drawn" in drawn_at, 60)
        tool.end_object()  # once drawn: the click's marker is drawn too, as for a user's click
        s = {**tool.stamps, **drawn_at}
        return [handled - t, *(s[k] - t for k in ("started", "answered", "written", "drawn"))]

    click(points[0])  # warm-up: the first pass, and the markers layer made and drawn (as by a user's first click)
    wait_until(lambda: not tool.busy, 60)
    settle()
    one(points[0], rest_ms)
    hovered = [one(p, rest_ms) for p in points[1 : n_single + 1]]
    jumped = [one(p, 0) for p in points[n_single + 1 : 2 * n_single + 1]]

    burst = points[2 * n_single + 1 :]
    probe = Probe()
    probe.start()
    t0 = time.perf_counter()
    for k, p in enumerate(burst):  # a fast user: one click every 40 ms
        QTimer.singleShot(40 * k, lambda p=p: (click(p), tool.end_object()))
    wait_until(lambda: time.perf_counter() - t0 > 0.04 * len(burst) and not tool.busy, 120)
    burst_seconds = time.perf_counter() - t0
    stalls = probe.stop()
    labels = viewer.layers["bench masks"].data
    found = sum(int(labels[p] > 0) for p in burst)
    n_objects = len(np.unique(labels)) - 1
    widget.toggle.setChecked(False)  # no hover pass left running when the viewer goes
    wait_until(lambda: not tool.busy, 60)
    viewer.close()
    return {"hovered": hovered, "jumped": jumped, "rest_ms": rest_ms, "burst": stalls,
            "burst_seconds": burst_seconds, "burst_clicks": len(burst), "burst_found": found, "objects": n_objects,
            "backend": backend}


def _quality_rows(set_name: str, by_model: dict) -> list[str]:
    """Table rows for one set of objects, one value column per click model (joined with " → ")."""
    qs = list(by_model.values())
    q0 = qs[0]

    def each(fmt):
        return " → ".join(fmt(q) for q in qs)

    where = {"held-out": f"{q0['objects']} objects of {q0['images']} held-out 256² images",
             "real": f"all {q0['objects']} nuclei of the real image's annotated 511² part",
             "real, as given": f"all {q0['objects']} nuclei of the real 512² image, its unannotated last row "
                               "and column included"}[set_name]
    def noc(q):
        return f"{q['noc85']:.2f} / {q['noc90']:.2f}"

    def fails(q):
        return f"{100 * q['fail85']:.1f} % / {100 * q['fail90']:.1f} %"

    lines = [
        f"| **{set_name}**: NoC@85 / NoC@90, {where}, ≤ 20 clicks | {each(noc)} | NoC@85 ≤ 2.0 (real) |",
    ]
    if all("interval85" in q for q in qs):
        lines.append(f"| ... NoC@85, 95 % interval over the objects drawn (bootstrap) | "
                     f"{each(lambda q: '%.2f–%.2f' % tuple(q['interval85']))} | |")
    if len(qs) == 2 and all(len(q.get("each85", ())) == q0["objects"] for q in qs):
        low, high = _interval(qs[1]["each85"], qs[0]["each85"])
        lines.append(f"| ... NoC@85 change, object by object: mean, 95 % interval (bootstrap) | "
                     f"{qs[1]['noc85'] - q0['noc85']:+.2f}, {low:+.2f} to {high:+.2f} | |")
    lines += [
        f"| ... Dice after 1 / 3 / 5 clicks | {each(lambda q: ' / '.join(f'{d:.3f}' for d in q['dice']))} | |",
        f"| ... objects never reaching IoU 0.85 / 0.90 in 20 clicks | {each(fails)} | |",
    ]
    for k, (lo, hi, n, _, _) in enumerate(q0["bins"]):
        span = f"< {hi}" if lo == 0 else (f"≥ {lo}" if hi >= 1000 else f"{lo}–{hi}")
        lines.append(f"| ... objects {span} px across ({n}): NoC@85 / NoC@90 | "
                     f"{each(lambda q, k=k: '%.2f / %.2f' % tuple(q['bins'][k][3:5]))} | |")
    if all("cut" in q for q in qs):
        (n_cut, *_), (n_in, *_) = q0["cut"]
        lines.append(f"| ... objects cut by the image's edge ({n_cut}) / inside it ({n_in}): NoC@85 / NoC@90 | "
                     f"{each(lambda q: '%.2f / %.2f, %.2f / %.2f' % (*q['cut'][0][1:], *q['cut'][1][1:]))} | |")
    if "net_only" in q0:
        lines.append(f"| ... click network alone (no segmentation model): NoC@85 / NoC@90 | "
                     f"{each(lambda q: noc(q['net_only']))} | |")
    lines.append(f"| ... the same first masks, each later click fixing the whole error region under it "
                 f"(a perfect corrector): NoC@85 / NoC@90 | {each(lambda q: noc(q['oracle']))} | |")
    return lines


def report(quality, core, viewer) -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        f"Click model {CLICK_MODEL.name}, lone first clicks answered by the shipped nuclei model "
        f"(ClickSegmenter(segmentation_model=load_model()), as in the viewer); CPU: {cpu_description()} "
        f"shared with other jobs (load average {load:.1f} when run), torch {torch.__version__}, "
        f"{gui_threads()} torch thread(s) in the viewer"
        f"{'; the viewer ran the networks in ' + viewer['backend'] if viewer else ''}.",
        "",
        "| measure | value | target |",
        "|---|---|---|",
    ]
    for set_name, by_model in (quality or {}).items():
        lines += _quality_rows(set_name, by_model)
    for size, prepare, per_click in core:
        lines.append(f"| core, {size}² uint16: normalise once / per first click (median) | "
                     f"{1000 * prepare:.0f} ms / {1000 * per_click:.0f} ms | |")
    if viewer:
        v = viewer
        b = v["burst"]
        for key, how in (("hovered", f"the cursor resting {v['rest_ms']} ms on the object before the press"),
                         ("jumped", "clicked the moment the cursor arrives (no rest)")):
            stages = 1000 * np.array(v[key])  # seconds from the press to each stage's end
            total = stages[:, -1]
            lines.append(f"| viewer, 2048²: press -> mask drawn, p50 / p95 / max ({len(total)} new objects, {how}) | "
                         f"{np.percentile(total, 50):.0f} / {np.percentile(total, 95):.0f} / {total.max():.0f} ms | "
                         f"p95 ≤ 100 ms |")
            lines += [f"| ... press → {name}: p50 / p95 | {np.percentile(stages[:, i], 50):.0f} / "
                      f"{np.percentile(stages[:, i], 95):.0f} ms | |" for i, name in enumerate(STAGES)]
        lines += [
            f"| burst of {v['burst_clicks']} clicks 40 ms apart: event-loop stall max / p99 | "
            f"{b['max']:.0f} / {b['p99']:.0f} ms ({b['over_50']} ticks over 50 ms of {b['ticks']}; own max "
            f"{b['own_max']:.0f} ms) | max ≤ 50 ms |",
            f"| ... clicks that became objects / time to answer all | {v['burst_found']} of {v['burst_clicks']} / "
            f"{v['burst_seconds']:.2f} s | all |",
        ]
    return "\n".join(lines)


NOTES = """\
Protocol (RITM's): the first click at the object's interior point farthest from its border, each
next one at the error pixel farthest from any correct pixel (positive on a missed part, negative
on an extra part), at most 20 clicks; NoC@t is the mean number of clicks to reach IoU t (20 when
never reached); Dice after k clicks assumes the user stops once IoU 0.9 is reached. Held-out
images are drawn with the generator's default (widest) settings (seed 2024; training pools use
seed 1 and checkpoint selection seed 7), so nuclei range from 5 to ~100 px across, many dim,
blurred, overlapping or cut by the image edge; objects are drawn at random. The real image is
the 512² Data Science Bowl crop of benchmarks/real_data.py with all its 125 hand-drawn nuclei
(never used to train or choose a model); its annotation stops one pixel short of the bottom and
right edges (the last row holds 8 labelled pixels, the row above 80; the last column none), so
"real" scores the 511² part without them and "real, as given" the whole image. The perfect-corrector rows keep the same first answers
and let every later click fix exactly the connected error region under it (what no model can
know): what better corrections alone could give. "before → now" columns: the previous shipped
click model, then the current one.

Latency is from the mouse press (through napari's mouse callbacks) to the first frame the canvas
draws after the mask was written into the Labels layer (napari 0.9 `data_setitem`: only the
changed pixels are written and only their bounding box is refreshed), under Xvfb with software
OpenGL. Stages, each from the press: the press handled on the UI thread; the worker starting the
pass; the core's answer (ClickSegmenter.predict); the answer back on the UI thread and written;
the frame drawn. "Resting" moves the cursor onto the object first and clicks 200 ms later, as a
person aiming does: the segmentation model's window under a resting cursor is prepared ahead of
the click. Stalls are gaps between ticks of a 10 ms QTimer, minus the period; "own" leaves out
the time the UI thread waited for a CPU that other processes held (Linux schedstat)."""


def write_docs(text: str, command: str) -> None:
    write_section("Click-to-segment", f"Measured with `{command}` (benchmarks/bench_click.py).\n\n{NOTES}\n\n{text}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="quality,real,core,viewer")
    parser.add_argument("--images", type=int, default=24, help="held-out images for NoC")
    parser.add_argument("--objects", type=int, default=12, help="objects per image for NoC")
    parser.add_argument("--net-only", action="store_true", help="also NoC with the click network alone")
    parser.add_argument("--size", type=int, default=2048, help="viewer image edge")
    parser.add_argument("--clicks", type=int, default=30, help="clicks timed one by one in the viewer (each way)")
    parser.add_argument("--burst", type=int, default=20, help="clicks in the burst")
    parser.add_argument("--model", help="click model file for the quality parts (default: the shipped one)")
    parser.add_argument("--seg-model", help="segmentation model answering first clicks (default: the shipped one)")
    parser.add_argument("--save", help="keep the quality figures in this JSON file")
    parser.add_argument("--load", help="quality figures from an earlier --save instead of measuring them again")
    parser.add_argument("--before", help="JSON of an earlier --save (e.g. the previous model): shown as 'before → now'")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    torch.set_num_threads(gui_threads())  # as in the viewer
    quality = {}
    if "quality" in parts:
        quality["held-out"] = bench_quality(held_out_objects(args.images, args.objects), model_path=args.model,
                                            seg_path=args.seg_model, net_only=args.net_only)
    if "real" in parts:
        quality["real"] = bench_quality(real_objects(), model_path=args.model, seg_path=args.seg_model)
        quality["real, as given"] = bench_quality(real_objects(as_given=True), model_path=args.model,
                                                  seg_path=args.seg_model)
    if args.load:
        quality = {**json.loads(Path(args.load).read_text()), **quality}
    if args.save:
        Path(args.save).write_text(json.dumps(quality, default=lambda v: v.item()))  # numpy scalars
    shown = {name: {"now": q} for name, q in quality.items()}
    if args.before:
        for name, q in json.loads(Path(args.before).read_text()).items():
            if name in shown:
                shown[name] = {"before": q, **shown[name]}
    core = bench_core() if "core" in parts else []
    viewer = bench_viewer(args.size, args.clicks, args.burst) if "viewer" in parts else None
    text = report(shown, core, viewer)
    print(text)
    if args.write_docs:
        write_docs(text, "bash run.sh bench bench_click " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
