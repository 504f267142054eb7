"""The example scripts run as a user runs them (small settings, so the suite stays quick)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
def test_segment_folder_writes_masks(tmp_path):
    out = run_example("segment_folder.py", "-o", str(tmp_path), "--size", "192")
    assert len(list(tmp_path.glob("*_masks.tif"))) == 3
    assert all(int(line.split(": ")[1].split()[0]) > 0 for line in out.splitlines())


@pytest.mark.slow
def test_finetune_from_files_reports_before_and_after():
    out = run_example("finetune_from_files.py", "--steps", "3", "--size", "256")
    assert "before" in out and "after 3 steps" in out and "fine-tuned.safetensors" in out


@pytest.mark.slow
def test_click_protocol_counts_clicks():
    out = run_example("click_protocol.py", "--objects", "3")
    assert out.count("object ") == 3 and "NoC@85 over 3 objects" in out
