"""Writing a benchmark's section of docs/benchmarks.md (other sections are kept), and what the
benchmarks share about the machine and the backend.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from napari_unet.devices import cpu_count, cpu_name

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def write_section(title: str, body: str, path: Path = DOCS) -> None:
    """Replace the ``## title`` section of ``path`` with ``body``, or append it."""
    section = f"## {title}\n\n{body.strip()}\n"
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    new = pattern.sub(lambda _: section + "\n", old) if pattern.search(old) else old.rstrip() + "\n\n" + section
    path.write_text(new.rstrip() + "\n")
    print(f"wrote the {title} section of {path}")


def cpu_description() -> str:
    """The CPU as benchmark sections name it: model, vector extensions torch uses, cores
    (an AVX2-only and an AVX-512 EPYC differ 3.5-4x in convolution speed).
    """
    return f"{cpu_name()} ({torch.backends.cpu.get_cpu_capability()}), {cpu_count()} cores"


def click_backend(models) -> str:
    """Export the networks' ONNX graphs into the cache as the Click widget does in the background
    (here first, so that every timed click runs them, and no export competes for the cores);
    which backend the clicks run, in words.
    """
    if os.environ.get("NAPARI_UNET_ONNX", "1") == "0":
        return "PyTorch (NAPARI_UNET_ONNX=0)"
    from napari_unet.model.onnx_runtime import onnx_network

    try:
        for model in models:
            onnx_network(model)
    except ImportError:
        return "PyTorch (onnxruntime is not installed)"
    return "ONNX Runtime (the graphs cached)"
