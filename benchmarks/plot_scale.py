"""Plot how block-wise segmentation's cost grows with the image: CPU time and peak memory per
process against the image's pixels, from bench_scale's measurements.

    .venv/bin/python benchmarks/plot_scale.py benchmarks/results/scale-*.jsonl -o docs/images/scale-cost.svg

Each input line is one measurement of ``bench_scale.py --results FILE`` (size, mode, CPU
seconds, peak MB). Writes a plain SVG (no plotting library needed): two log-log panels.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

MODES = {"whole": ("whole image in memory", "#444444"), "blocks": ("blocks in this process", "#1f77b4"),
         "dask-1": ("1 dask worker", "#d62728"), "dask-2": ("2 dask workers", "#2ca02c")}
W, H, PAD = 420, 300, 56  # one panel's size and its margin for the axes' labels


def read(paths: list[Path]) -> list[dict]:
    rows = []
    for path in paths:
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r.get("size") and r.get("mode") in MODES]


def _ticks(lo: float, hi: float) -> list[float]:
    """1, 2, 5 x powers of ten between lo and hi."""
    out = []
    for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        out += [m * 10**e for m in (1, 2, 5) if lo <= m * 10**e <= hi]
    return out


def panel(rows: list[dict], key, title: str, unit: str, x0: int) -> list[str]:
    """One log-log panel of ``key(row)`` against megapixels, a line per mode."""
    xs = [r["size"] ** 2 / 1e6 for r in rows]
    ys = [key(r) for r in rows]
    xlo, xhi = min(xs) / 1.3, max(xs) * 1.3
    ylo, yhi = min(ys) / 1.5, max(ys) * 1.5

    def px(x: float) -> float:
        return x0 + PAD + (math.log(x) - math.log(xlo)) / (math.log(xhi) - math.log(xlo)) * (W - PAD - 10)

    def py(y: float) -> float:
        return H - PAD + 20 - (math.log(y) - math.log(ylo)) / (math.log(yhi) - math.log(ylo)) * (H - PAD - 10)

    out = [f'<text x="{x0 + W / 2}" y="18" text-anchor="middle" font-weight="bold">{title}</text>',
           f'<rect x="{x0 + PAD}" y="30" width="{W - PAD - 10}" height="{H - PAD - 10}" fill="none" stroke="#999"/>']
    for t in _ticks(ylo, yhi):
        out += [f'<line x1="{x0 + PAD}" x2="{x0 + W - 10}" y1="{py(t):.1f}" y2="{py(t):.1f}" stroke="#eee"/>',
                f'<text x="{x0 + PAD - 4}" y="{py(t) + 4:.1f}" text-anchor="end">{t:g}</text>']
    for size in sorted({r["size"] for r in rows}):
        x = px(size**2 / 1e6)
        out += [f'<line x1="{x:.1f}" x2="{x:.1f}" y1="30" y2="{H - PAD + 20}" stroke="#eee"/>',
                f'<text x="{x:.1f}" y="{H - PAD + 36}" text-anchor="middle">{size}²</text>']
    out.append(f'<text x="{x0 + 14}" y="{(H + 30) / 2}" transform="rotate(-90 {x0 + 14} {(H + 30) / 2})" '
               f'text-anchor="middle">{unit}</text>')
    for mode, (_, colour) in MODES.items():
        pts = sorted((r["size"] ** 2 / 1e6, key(r)) for r in rows if r["mode"] == mode)
        if not pts:
            continue
        line = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        out.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{colour}"/>' for x, y in pts]
    return out


def svg(rows: list[dict]) -> str:
    parts = panel(rows, lambda r: r["cpu_seconds"], "CPU time (s)", "seconds, both cores", 0)
    parts += panel(rows, lambda r: r.get("worker_peak_mb", r["peak_mb"]), "Peak memory per process (MB)", "MB", W)
    y = H + 22
    for i, (mode, (label, colour)) in enumerate(MODES.items()):
        x = 60 + i * 200
        parts += [f'<rect x="{x}" y="{y - 9}" width="14" height="10" fill="{colour}"/>',
                  f'<text x="{x + 20}" y="{y}">{label}</text>']
    body = "\n".join(parts)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * W}" height="{H + 36}" font-family="sans-serif" '
            f'font-size="12"><rect width="100%" height="100%" fill="white"/>\n{body}\n</svg>\n')


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("results", type=Path, nargs="+")
    parser.add_argument("-o", "--output", type=Path, default=Path("docs/images/scale-cost.svg"))
    args = parser.parse_args()
    args.output.write_text(svg(read(args.results)))
    print("wrote", args.output)


if __name__ == "__main__":
    main()
