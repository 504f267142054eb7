"""The viewer while the New model widget trains: prints figures (no assertions).

    bash run.sh bench bench_train_widget                 # 60 s budget, 3 painted slices of the MR phantom
    bash run.sh bench bench_train_widget --seconds 180 --slices 5

Opens the MR phantom from File › Open Sample, keeps its labels on a few slices (the
user's painted slices), docks New model from the Plugins menu and presses Train with a
10 ms QTimer probe on the event loop (the same probe as bench_ui). Prints:
- event-loop stalls while training and while the class map is made and shown: p50 / p99 /
  max, and the worst one without the time other processes held the CPUs ("own");
- press Train -> first held-out figure shown, and -> class map layer shown;
- steps, steps/s and the last held-out Dice per class.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from bench_ui import Probe

from napari_unet._qt.demo import settle, wait_until

IMAGE = "abdomen MR (synthetic)"


def painted_slices(n: int, depth: int) -> list[int]:
    """``n`` evenly spaced slices, away from the volume's ends (as bench_new_task)."""
    return sorted({int(z) for z in np.linspace(0.15 * depth, 0.85 * depth - 1, n).round()})


def run(seconds: float, slices: int, base_channels: int | None) -> dict:
    import napari

    from napari_unet._qt.train.job import warm_up_training
    from napari_unet._qt.train.widget import TrainOptions

    viewer = napari.Viewer(title="bench_train_widget")
    viewer.window.resize(1400, 900)
    viewer.open_sample("napari-unet", "phantom_mr")
    labels = viewer.layers[f"{IMAGE} classes"]
    keep = painted_slices(slices, labels.data.shape[0])
    painted = np.zeros_like(labels.data)
    painted[keep] = labels.data[keep]
    labels.data = painted
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "New model")
    widget.options = TrainOptions(base_channels=base_channels)
    widget.unit.setCurrentText("seconds")
    widget.budget.setValue(int(seconds))
    settle(3.0)  # the dock shows, then starts the warm-up
    wait_until(lambda: not warm_up_training().is_alive(), 120)  # the widget's import warm-up, as a user
    settle(1.0)  # who looks at the form first would not notice; first draws done before measuring
    records, trained = [], []
    probe = Probe()
    probe.start()
    t0 = time.perf_counter()
    widget.run_button.click()
    widget._worker.yielded.connect(lambda step: step.record and records.append(step.record))
    widget._worker.returned.connect(lambda _: trained.append(time.perf_counter()))
    shown = f"{IMAGE} classes (new model)"
    wait_until(lambda: not widget.running and (shown in viewer.layers or not trained), seconds * 4 + 600)
    settle(0.2)  # the class map drawn
    to_class_map = time.perf_counter() - t0
    stalls = probe.stop(split_at=trained[0] if trained else None)
    last = records[-1] if records else None
    out = {"painted": keep, "first_score_s": widget.first_score_s, "to_class_map": to_class_map,
           "steps": last.step if last else 0, "train_seconds": last.seconds if last else 0.0,
           "score": widget.score.text(), "status": widget.status.text(), "top": probe.top,
           "trained_at": trained[0] - t0 if trained else None, **stalls}
    viewer.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="the training budget")
    parser.add_argument("--slices", type=int, default=3, help="painted slices of the 40")
    parser.add_argument("--base-channels", type=int, help="a narrower network than the plan's")
    args = parser.parse_args()
    r = run(args.seconds, args.slices, args.base_channels)
    load = os.getloadavg()[0]
    print(f"painted slices {r['painted']}; budget {args.seconds:g} s; load average at the end {load:.1f}")
    print(f"press Train -> first held-out figure shown: {r['first_score_s']:.2f} s" if r["first_score_s"]
          else "no held-out figure shown")
    print(f"press Train -> class map layer shown: {r['to_class_map']:.1f} s")
    print(f"{r['steps']} steps in {r['train_seconds']:.1f} s ({r['steps'] / max(r['train_seconds'], 1e-9):.2f}/s)")
    print(f"stall while training: max {r['max_before']:.0f} ms (own {r['own_max_before']:.0f}); while the class "
          f"map is made and shown: max {r['max_after']:.0f} ms (own {r['own_max_after']:.0f})")
    print(f"stall over the whole run: p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms, max {r['max']:.0f} ms, "
          f"{r['over_50']} of {r['ticks']} ticks over 50 ms ({r['own_over_50']} without other processes' CPU time)")
    print(f"largest own stalls (s after the press, ms): {r['top']}; training ended at {r['trained_at']:.1f} s")
    print(r["score"])
    print(r["status"])


if __name__ == "__main__":
    main()
