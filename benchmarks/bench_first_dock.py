"""Opening the first dock in a fresh napari: how long the viewer freezes (no assertions).

    bash run.sh bench bench_first_dock            # both ways, each in a fresh process
    bash run.sh bench bench_first_dock --repeats 3

A 10 ms QTimer probe ticks on napari's event loop; a stall is a gap between ticks minus
the period. Measured from the click that opens the dock (Plugins › napari-unet ›
Segment, i.e. ``add_plugin_dock_widget``) until the widget is usable, two ways:
- ``plugins menu``: what napari-unet registers (``_qt.docks``: a loading dock, PyTorch
  and the model in a thread, the widget built when they are ready);
- ``direct``: the widget class built where napari calls it (what it was before);
- ``empty dock``: a label in a dock, the floor under both (napari and Qt relaying out
  the window and its OpenGL canvas for any new dock).
Each way runs in its own fresh interpreter: PyTorch loads once per process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

CHILD = r"""
import json, sys, time
import numpy as np
import napari
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QApplication

way = sys.argv[1]
viewer = napari.Viewer(show=True)
app = QApplication.instance()
for _ in range(20):
    app.processEvents()
gaps, last, marks = [], [None], {}

def tick():
    now = time.perf_counter()
    if last[0] is not None:
        gaps.append((last[0], now))
    last[0] = now

probe = QTimer(); probe.timeout.connect(tick); probe.start(10)

def open_dock():
    marks["press"] = time.perf_counter()
    if way == "empty dock":  # the floor: napari and Qt adding any dock (the canvas relays out)
        from qtpy.QtWidgets import QLabel
        viewer.window.add_dock_widget(QLabel("nothing"), name="empty")
        marks["ready"] = time.perf_counter()
    elif way == "direct":
        from napari_unet._qt.segment.widget import SegmentWidget
        viewer.window.add_dock_widget(SegmentWidget(viewer), name="Segment")
        marks["ready"] = time.perf_counter()
    else:
        _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "Segment")
        marks["shown"] = time.perf_counter()
        def wait():
            from napari_unet._qt.docks import inner
            if inner(widget) is None:
                QTimer.singleShot(10, wait)
            else:
                marks["ready"] = time.perf_counter()
        wait()

def finish():
    if "ready" not in marks:
        QTimer.singleShot(100, finish); return
    end = marks["ready"] + 1.0
    if time.perf_counter() < end:
        QTimer.singleShot(100, finish); return
    stalls = [(b - a) * 1000 - 10 for a, b in gaps if b > marks["press"]]
    print("RESULT", json.dumps({"stalls": stalls, "ready_s": marks["ready"] - marks["press"],
                                "shown_s": marks.get("shown", marks["ready"]) - marks["press"]}))
    app.quit()

QTimer.singleShot(1000, open_dock)
QTimer.singleShot(1500, finish)
app.exec_()
"""


def run(way: str) -> dict:
    env = {**os.environ, "NAPARI_UNET_CONFIG_DIR": os.environ.get("NAPARI_UNET_CONFIG_DIR", "/tmp/napari-unet-bench")}
    done = subprocess.run([sys.executable, "-c", CHILD, way], capture_output=True, text=True, env=env, timeout=600)
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT")), None)
    if line is None:
        raise SystemExit(f"{way}: no result\n{done.stderr[-3000:]}")
    return json.loads(line[len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print("| way | dock shown (s) | widget usable (s) | stall max (ms) | stall p99 (ms) | stalls > 100 ms |")
    print("|---|---|---|---|---|---|")
    for _ in range(args.repeats):
        for way in ("plugins menu", "direct", "empty dock"):
            r = run(way)
            s = np.array(r["stalls"])
            print(f"| {way} | {r['shown_s']:.2f} | {r['ready_s']:.2f} | {s.max():.0f} | "
                  f"{np.percentile(s, 99):.0f} | {(s > 100).sum()} |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
