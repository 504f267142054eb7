#!/usr/bin/env bash
# The GPU checks in one run, for a machine with a CUDA GPU and PyTorch (no napari needed):
#   OUT=results/ bash scripts/gpu_check.sh [TRAIN_SECONDS]
# writes OUT/bench_gpu.json and OUT/*.log: bench_gpu (segment, training step fp32/bf16,
# out-of-memory retry, 3D, clicks) and bench_predict on CUDA (~3 min on an H200), then, with
# TRAIN_SECONDS > 0, that many seconds of training each for the click network (from the
# shipped one, as it was trained last: people's borders moved a pixel for 30 % of the corrected
# objects; kept by NoC on its selection set) and the segmentation model (from the shipped
# one; a pool of images, since making fresh ones bounds a GPU at ~7 steps/s on 16 cores).
# Every budget is a time budget: a run stopped by the machine's limit still leaves its files.
# Only numpy, scipy, scikit-image, safetensors, tqdm and torch are imported (no dask, napari).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:?set OUT to a folder for the results}
SECONDS_EACH=${1:-0}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/smi.txt"
(cd benchmarks && timeout 300 $PY bench_gpu.py --json "$OUT/bench_gpu.json" 2>&1 | tee "$OUT/bench_gpu.log")
(cd benchmarks && timeout 120 $PY bench_predict.py --device cuda --base 24 2>&1 | tee "$OUT/bench_predict.log")
[ "$SECONDS_EACH" -gt 0 ] || exit 0
timeout $((SECONDS_EACH + 120)) $PY scripts/train_click.py --device cuda --threads 8 \
    --init napari_unet/model/weights/nuclei_click.safetensors -o "$OUT/nuclei_click.safetensors" \
    --minutes "$(python3 -c "print($SECONDS_EACH / 60)")" --every 250 --select-images 12 --select-objects 10 \
    --pool 150 --moved-boundary 0.3 2>&1 | tee "$OUT/train_click.log"
# `napari-unet train` itself imports the dask route; its training function alone does not
timeout $((SECONDS_EACH + 120)) $PY - "$OUT" "$SECONDS_EACH" <<'EOF' 2>&1 | tr '\r' '\n' | awk 'NR % 200 == 1 || !/step\/s|s\/step/' | tee "$OUT/train_seg.log"
import argparse, sys
from napari_unet.cli.train import add_train, run_train
out, seconds = sys.argv[1], sys.argv[2]
p = argparse.ArgumentParser()
add_train(p.add_subparsers())
sys.exit(run_train(p.parse_args([
    "train", "--synthetic", "--val-every", "0", "--val-size", "0", "--name", "nuclei", "--batch-size", "16",
    "--patch-size", "192", "--base-channels", "24", "--depth", "4", "--pool", "400", "--object-zoom",
    "--init", "napari_unet/model/weights/nuclei.safetensors", "--max-seconds", seconds, "--lr", "3e-4",
    "--warmup", "0.02", "--threads", "8", "--seed", "6", "--device", "cuda", "-o", f"{out}/nuclei_gpu.safetensors"])))
EOF
