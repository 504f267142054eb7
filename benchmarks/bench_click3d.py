"""Clicks through planes: one click -> the 3D object, its quality and its latency.

    bash run.sh bench bench_click3d                       # all parts (the viewer under Xvfb if no display)
    bash run.sh bench bench_click3d --parts core,viewer   # latency only
    bash run.sh bench bench_click3d --write-docs          # also (re)write its section of docs/benchmarks.md

With the shipped click model and, answering a lone first click in its plane, the shipped
nuclei model (as in the viewer), on the CPU:
- quality: one click at the centre of each nucleus of held-out generated volumes
  (napari_unet.synth.volumes, seeds never used in training): the 3D IoU of the object it
  gives with the true nucleus, beside the IoU of the Segment widget's 3D object for that
  nucleus (``segment(axes="ZYX")``, the best-matching one) and with the carrying stopped
  (the clicked plane only);
- core: a 256×512×512 volume (a generated 64-plane volume, Z spacing twice the in-plane
  one so that a nucleus spans ~10 planes, stacked 4 times): the time
  from a click to the 3D object's masks (p50 / p95), and the planes each object spans;
- viewer: the same volume in a real viewer with the Click widget: mouse press -> every
  plane of the object written into the Labels layer (p50 / p95), stage by stage. Each
  nucleus's plane is shown first (drawn), then the cursor arrives and rests ``--rest``
  seconds (0: clicked the moment it arrives).

The networks run in ONNX Runtime, as the Click widget runs them once their graphs are
exported (the bench exports them first); ``NAPARI_UNET_ONNX=0`` measures PyTorch instead.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _docs import click_backend, cpu_description, write_section
from scipy import ndimage as ndi

from napari_unet import load_model, segment
from napari_unet.clicks.segmenter import farthest_point, load_click_model
from napari_unet.clicks.types import Click
from napari_unet.clicks.volume import VolumeSegmenter
from napari_unet.synth.volumes import VolumeConfig, synth_volume, synth_volumes

HELD_OUT_SEED = 2024  # training draws volumes from other seeds
BIG = (256, 512, 512)


def centres(labels: np.ndarray, n: int | None = None) -> list[tuple[int, int, int]]:
    """The innermost voxel of each nucleus (of ``n`` spread over the ids), in its middle plane."""
    ids = np.unique(labels)[1:]
    if n is not None and ids.size > n:
        ids = ids[np.linspace(0, ids.size - 1, n).astype(int)]
    boxes = ndi.find_objects(labels)
    out = []
    for i in ids:
        box = boxes[i - 1]
        part = labels[box] == i
        z = int(np.argmax(part.sum(axis=(1, 2))))
        y, x = farthest_point(part[z])
        out.append((box[0].start + z, box[1].start + y, box[2].start + x))
    return out


def one_click(segmenter: VolumeSegmenter, voxel) -> dict:
    """The 3D masks of a lone click at ``voxel``: plane -> ObjectMask."""
    z, y, x = voxel
    return segmenter.predict(z, [Click(float(y), float(x))], {})


def as_volume(masks: dict, shape) -> np.ndarray:
    out = np.zeros(shape, bool)
    for z, mask in masks.items():
        out[z][mask.slices] = mask.mask
    return out


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def bench_quality(n_volumes: int) -> dict:
    click_model, seg_model = load_click_model(), load_model()
    rows = []
    for volume in synth_volumes(n_volumes, HELD_OUT_SEED, (32, 128, 128)):
        segmenter = VolumeSegmenter(volume.image, click_model, device="cpu", segmentation_model=seg_model,
                                    spacing=volume.spacing)
        labels = segment(volume.image, seg_model, axes="ZYX", spacing=volume.spacing, device="cpu")
        for voxel in centres(volume.labels):
            truth = volume.labels == volume.labels[voxel]
            masks = one_click(segmenter, voxel)
            hits = np.unique(labels[truth])
            seg_iou = max((iou(labels == h, truth) for h in hits if h), default=0.0)
            rows.append((iou(as_volume(masks, truth.shape), truth), seg_iou,
                         iou(as_volume({voxel[0]: masks[voxel[0]]}, truth.shape), truth)))
    a = np.array(rows)
    return {"objects": len(rows), "volumes": n_volumes, "click": a[:, 0].mean(), "segment": a[:, 1].mean(),
            "plane": a[:, 2].mean(), "click_over_50": float((a[:, 0] > 0.5).mean())}


def big_volume():
    part = synth_volume(7, (BIG[0] // 4, *BIG[1:]), VolumeConfig(z_ratio=(2.0, 2.0)))
    return np.concatenate([part.image] * 4), np.concatenate([part.labels] * 4), part.spacing


def bench_core(image, labels, spacing, n: int) -> dict:
    click_model, seg_model = load_click_model(), load_model()
    backend = click_backend((click_model, seg_model))
    t = time.perf_counter()
    segmenter = VolumeSegmenter(image, click_model, device="cpu", segmentation_model=seg_model, spacing=spacing)
    prepare = time.perf_counter() - t
    points = centres(labels[: BIG[0] // 4], n + 1)
    one_click(segmenter, points[0])  # warm-up
    times, cpu, planes = [], [], []
    for voxel in points[1:]:
        t, c = time.perf_counter(), time.process_time()
        masks = one_click(segmenter, voxel)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        planes.append(sum(1 for m in masks.values() if m.mask.any()))
    return {"prepare": prepare, "times": times, "cpu": cpu, "planes": planes, "backend": backend}


def bench_viewer(image, labels, spacing, n: int, rest: float = 0.2) -> dict:
    """Press -> the object's planes written, in a real viewer (the cursor rests ``rest`` s on each first)."""
    import napari
    from napari.utils._test_utils import read_only_mouse_event
    from napari.utils.interactions import mouse_move_callbacks, mouse_press_callbacks, mouse_release_callbacks

    from napari_unet._qt.click.widget import ClickWidget
    from napari_unet._qt.demo import settle, wait_until

    backend = click_backend((load_click_model(), load_model()))
    viewer = napari.Viewer(title="bench_click3d")
    viewer.window.resize(1400, 900)
    viewer.add_image(image, name="bench", scale=spacing, metadata={"napari_unet_stack_axis": "Z"})
    widget = ClickWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Click")
    tool = widget.tool
    points = centres(labels[: BIG[0] // 4], n + 1)
    viewer.dims.set_point(0, points[0][0] * spacing[0])
    widget.toggle.setChecked(True)
    wait_until(lambda: not tool.busy, 120)  # the volume's scale is found when click mode starts
    settle()

    def event(kind, point):
        world = tuple(float(c * s) for c, s in zip(point, spacing))
        return read_only_mouse_event(type=kind, button=1, position=world,
                                     pos=np.zeros(2), dims_displayed=[1, 2])

    rows = []
    for k, point in enumerate(points):
        viewer.dims.set_point(0, point[0] * spacing[0])
        settle(0.3)  # the plane is shown (drawn, normalised) before the cursor reaches the nucleus
        mouse_move_callbacks(viewer, event("mouse_move", point))
        if rest:
            settle(rest)  # a person aiming
        tool.stamps = {}
        t = time.perf_counter()
        mouse_press_callbacks(viewer, event("mouse_press", point))
        mouse_release_callbacks(viewer, event("mouse_release", point))
        handled = time.perf_counter()
        tool.end_object()
        wait_until(lambda: not tool.busy and "written" in tool.stamps, 60)
        s = tool.stamps
        if k:  # the first is a warm-up
            rows.append([handled - t, *(s[key] - t for key in ("started", "answered", "written"))])
    widget.toggle.setChecked(False)
    wait_until(lambda: not tool.busy, 60)
    settle(0.5)  # the last worker's signals delivered before the viewer goes
    viewer.close()
    return {"stages": rows, "rest": rest, "backend": backend}


def _ms(values) -> str:
    return f"{1000 * np.percentile(values, 50):.0f} / {1000 * np.percentile(values, 95):.0f}"


def report(quality, core, viewer) -> str:
    lines = [f"Machine: {cpu_description()}, torch threads {torch.get_num_threads()} (the viewer: 1, as the "
             "click tool runs); shared with other jobs while "
             "measured (the figures are upper bounds).", ""]
    if quality:
        lines += [f"**Quality**: one click at the centre of each of {quality['objects']} nuclei in "
                  f"{quality['volumes']} held-out generated volumes (32×128×128): mean 3D IoU with the true "
                  f"nucleus {quality['click']:.2f} ({100 * quality['click_over_50']:.0f} % over 0.5); the Segment "
                  f"widget's 3D object for the same nucleus {quality['segment']:.2f}; the clicked plane alone "
                  f"(no carrying) {quality['plane']:.2f}.", ""]
    if core:
        lines += [f"**Core** (256×512×512): the volume's intensity scale {1000 * core['prepare']:.0f} ms "
                  f"once; one click → the 3D object's masks p50 / p95 {_ms(core['times'])} ms (CPU time of "
                  f"this process {_ms(core['cpu'])} ms) over "
                  f"{len(core['times'])} nuclei spanning {np.median(core['planes']):.0f} planes (median, "
                  f"{min(core['planes'])}–{max(core['planes'])}); the networks in {core['backend']}.", ""]
    if viewer:
        stages = np.array(viewer["stages"])
        lines += [f"**Viewer** (the same volume, each nucleus's plane shown, then the cursor resting "
                  f"{1000 * viewer['rest']:.0f} ms on the nucleus before the click; the networks in "
                  f"{viewer['backend']}), ms from the mouse press, p50 / p95:", "",
                  "| press handled | pass started | core answered | written into the layer |",
                  "|---|---|---|---|",
                  "| " + " | ".join(_ms(stages[:, i]) for i in range(4)) + " |", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="quality,core,viewer")
    parser.add_argument("--volumes", type=int, default=4, help="held-out volumes for quality")
    parser.add_argument("--clicks", type=int, default=20, help="nuclei clicked for latency")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the click tool uses 1)")
    parser.add_argument("--rest", type=float, default=0.2,
                        help="seconds the cursor rests on a nucleus before the click (0: none)")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    torch.set_num_threads(args.threads)
    quality = bench_quality(args.volumes) if "quality" in parts else None
    image, labels, spacing = big_volume() if parts & {"core", "viewer"} else (None, None, None)
    core = bench_core(image, labels, spacing, args.clicks) if "core" in parts else None
    viewer = bench_viewer(image, labels, spacing, args.clicks, args.rest) if "viewer" in parts else None
    text = report(quality, core, viewer)
    print(text)
    if args.write_docs:
        write_section("Clicks through planes", text + "\n\n`bash run.sh bench bench_click3d`")


if __name__ == "__main__":
    main()
