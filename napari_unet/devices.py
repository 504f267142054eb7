"""Which device to run on, and what CPU this is."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def available_devices() -> list[str]:
    """Devices that can really run here, fastest first; ``"cpu"`` is always last."""
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return [*found, "cpu"]


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None`` or ``"auto"`` picks CUDA, then MPS, then the CPU; anything else is checked.

    Raises
    ------
    ValueError
        If the named device does not exist on this machine.
    """
    if device is None or device == "auto":
        return torch.device(available_devices()[0])
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):  # not a device name at all ("gpu", 3.5)
        dev = None
    if dev is None or dev.type not in available_devices():
        raise ValueError(
            f"device {str(device)!r} is not available here; choose one of "
            f"{', '.join(available_devices())} (or 'auto')"
        )
    return dev


def cpu_name() -> str:
    """The CPU's model name (for benchmark figures and model provenance)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_count() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1
