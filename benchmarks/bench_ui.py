"""The viewer while the Segment widget works: prints figures and ratios (no assertions).

    bash run.sh bench bench_ui                  # 2048² on the CPU, under Xvfb if no display
    bash run.sh bench bench_ui --write-docs     # also (re)write the "Plugin" section of docs/benchmarks.md

Measures, on the CPU:
- event-loop stalls while the widget segments a 2048² uint16 image: a 10 ms QTimer
  probe records every tick; a stall is a gap between ticks minus the 10 ms period;
- the widget's time (press Segment -> masks layer written) against ``segment()`` run
  as ``napari-unet segment`` runs it (same function, torch's default threads);
- re-thresholding: ``instances_from_probabilities`` on the cached 2048² probabilities,
  and through the widget (spin box changed -> masks layer rewritten), with its stalls.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import time
from pathlib import Path

import numpy as np
import torch

from napari_unet import UNet, instances_from_probabilities, load_model, segment
from napari_unet.devices import cpu_count, gui_threads
from napari_unet.modelfile import ModelFileError
from napari_unet._qt.demo import settle, wait_until
from napari_unet.sample import nuclei_sample

PROBE_MS = 10
DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


class Probe:
    """Ticks every PROBE_MS on the Qt event loop and keeps the gaps between ticks."""

    def __init__(self):
        from qtpy.QtCore import QTimer

        self.gaps: list[float] = []  # seconds between ticks
        self.ends: list[float] = []  # when each gap ended
        self._last = None
        self.timer = QTimer()
        self.timer.setInterval(PROBE_MS)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self._last)
        self.ends.append(now)
        self._last = now

    def start(self) -> None:
        self.gaps, self.ends = [], []
        self._last = time.perf_counter()  # the wait for the first tick counts
        self.timer.start()

    def stop(self, split_at: float | None = None) -> dict:
        """Stall statistics (ms); with ``split_at`` (a perf_counter time), also the worst
        stall of the ticks that ended before it and after it."""
        self.timer.stop()
        self._tick()  # and so does the wait since the last one
        stalls = np.maximum(np.array(self.gaps) - PROBE_MS / 1000, 0) * 1000
        split = {}
        if split_at is not None:
            before = np.array(self.ends) < split_at
            split = {
                "max_before": float(stalls[before].max(initial=0)),
                "max_after": float(stalls[~before].max(initial=0)),
            }
        return {
            **split,
            "ticks": len(stalls),
            "p50": float(np.percentile(stalls, 50)),
            "p99": float(np.percentile(stalls, 99)),
            "max": float(stalls.max()),
            "over_50": int((stalls > 50).sum()),
        }


def get_model(path: str | None):
    try:
        return load_model(path), "the shipped nuclei model" if path is None else path
    except ModelFileError as exc:
        print(f"note: {exc}; timing a random UNet(base_channels=24, depth=4) instead")
        return UNet(1, 3, base_channels=24, depth=4).eval(), "random UNet(base 24, depth 4)"


def bench_cli(image, model, repeats: int) -> float:
    segment(image[:512, :512], model, device="cpu")  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        segment(image, model, device="cpu")
        times.append(time.perf_counter() - t)
    return min(times)


def bench_gui(image, model, repeats: int) -> dict:
    import napari

    from napari_unet._qt.segment_widget import SegmentWidget
    from napari_unet._qt.session import session_for

    viewer = napari.Viewer(title="bench_ui")
    viewer.window.resize(1400, 900)
    layer = viewer.add_image(image, name="bench")
    session_for(viewer).set_model(model, "bench")
    widget = SegmentWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Segment")
    widget.device.setCurrentText("cpu")
    settle(1.0)  # first draws done before measuring
    probe = Probe()
    runs = []
    for _ in range(repeats):
        probe.start()
        t = time.perf_counter()
        widget.segment()
        arrived = []  # when the result reached the main thread (then the layer is written)
        widget._worker.returned.connect(lambda _: arrived.append(time.perf_counter()))
        wait_until(lambda: not widget.running)
        seconds = time.perf_counter() - t
        runs.append({"seconds": seconds, **probe.stop(split_at=arrived[0] if arrived else None)})
    masks = viewer.layers[f"{layer.name} masks"]
    prediction = widget.session.prediction(layer)

    core = []
    for _ in range(3):
        t = time.perf_counter()
        instances_from_probabilities(prediction.probabilities, widget.advanced.params(), prediction.task)
        core.append(time.perf_counter() - t)

    recompute, writes = [], []
    masks.events.paint.connect(writes.append)  # one undoable write per recompute
    for value in (0.6, 0.4, 0.5):  # foreground threshold: each change rewrites the masks
        probe.start()
        t = time.perf_counter()
        widget.advanced.foreground.setValue(value)  # starts the 150 ms debounce...
        widget.recompute()  # ...which we skip: time the work, not the wait
        wait_until(lambda: not widget.recomputing)
        recompute.append({"seconds": time.perf_counter() - t, **probe.stop()})
    if len(writes) != 3:
        print(f"note: {3 - len(writes)} of 3 recomputes changed no pixel (nothing was written)")
    objects = int(masks.data.max())
    frames = []  # the floor under any stall: napari rendering one frame of this scene
    for _ in range(5):
        t = time.perf_counter()
        viewer.screenshot(canvas_only=True)
        frames.append(time.perf_counter() - t)
    viewer.close()
    return {"runs": runs, "core_recompute": min(core), "recompute": recompute, "objects": objects,
            "frame": float(np.median(frames))}


def report(size, model_name, t_cli, gui) -> str:
    best = min(gui["runs"], key=lambda r: r["seconds"])
    worst_stall = max(r["max"] for r in gui["runs"])
    rec_best = min(r["seconds"] for r in gui["recompute"])
    rec_stall = max(r["max"] for r in gui["recompute"])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        f"Image {size}x{size} uint16 (the sample generator), {model_name}, CPU: {platform.processor() or platform.machine()}, "
        f"{cpu_count()} cores, torch {torch.__version__}; load average when run: {load:.1f}.",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| `segment()` as the CLI runs it ({torch.get_num_threads()} torch threads) | {t_cli:.1f} s | |",
        f"| Segment widget, press -> masks layer ({gui_threads()} torch thread(s)) | {best['seconds']:.1f} s "
        f"(x{best['seconds'] / t_cli:.2f} the CLI) | ≤ x1.2 |",
        f"| event-loop stall while segmenting: max / p99 / p50 | {worst_stall:.0f} / {best['p99']:.0f} / "
        f"{best['p50']:.0f} ms ({sum(r['over_50'] for r in gui['runs'])} ticks over 50 ms, "
        f"{sum(r['ticks'] for r in gui['runs'])} ticks) | max ≤ 50 ms |",
        f"| ... worst stall while the network runs / while the result is written | "
        f"{max(r.get('max_before', 0) for r in gui['runs']):.0f} / "
        f"{max(r.get('max_after', 0) for r in gui['runs']):.0f} ms | |",
        f"| napari rendering one frame of the image + masks (`viewer.screenshot`), median | "
        f"{gui['frame'] * 1000:.0f} ms | |",
        f"| re-threshold, core `instances_from_probabilities` | {gui['core_recompute']:.2f} s | < 0.5 s |",
        f"| re-threshold through the widget (spin box -> layer rewritten, undoable) | {rec_best:.2f} s, "
        f"max stall {rec_stall:.0f} ms | < 0.5 s |",
    ]
    return "\n".join(lines)


def write_docs(text: str, command: str) -> None:
    section = f"## Plugin\n\nMeasured with `{command}` (benchmarks/bench_ui.py).\n\n{text}\n"
    old = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    pattern = re.compile(r"^## Plugin\n.*?(?=^## |\Z)", re.S | re.M)
    new = pattern.sub(section + "\n", old) if pattern.search(old) else old.rstrip() + "\n\n" + section
    DOCS.write_text(new)
    print(f"wrote the Plugin section of {DOCS}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--model", help="model file (default: the shipped model)")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()

    image = nuclei_sample((args.size, args.size)).image
    model, model_name = get_model(args.model)
    t_cli = bench_cli(image, model, args.repeats)
    print(f"segment() as the CLI runs it: {t_cli:.1f} s")
    gui = bench_gui(image, model, args.repeats)
    for i, run in enumerate(gui["runs"]):
        kind = "new masks layer" if i == 0 else "replaced in the masks layer"
        print(f"run {i + 1} ({kind}): {run['seconds']:.1f} s, worst stall while the network runs "
              f"{run.get('max_before', 0):.0f} ms, while the result is shown {run.get('max_after', 0):.0f} ms")
    text = report(args.size, model_name, t_cli, gui)
    print(text)
    if args.write_docs:
        write_docs(text, "bash run.sh bench bench_ui --write-docs")


if __name__ == "__main__":
    main()
