"""Which device to run on, and how many CPU threads to use."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
import threading
from functools import cache

import torch

BACKGROUND_NICE = 10  # Linux nice of worker threads in the viewer: the UI thread (nice 0) gets ~9x their CPU share


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
    dev = torch.device(device)
    if dev.type not in available_devices():
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


@cache
def thread_priorities() -> bool:
    """Whether one thread's CPU priority can be lowered without the others' (Linux).

    On Linux the nice value belongs to a thread, and threads inherit it from the thread
    that starts them; elsewhere ``os.setpriority`` acts on the whole process.
    """
    if not sys.platform.startswith("linux") or not hasattr(os, "setpriority"):
        return False
    try:
        os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    except OSError:
        return False
    return True


def lower_thread_priority(nice: int = BACKGROUND_NICE) -> bool:
    """Run the calling thread, and the threads it starts from now on, at nice ``nice`` or lower
    priority (Linux).

    Never raises a priority, so calling it again is harmless; raising it back would need
    privileges, so the thread keeps the lower priority. Torch's OpenMP threads are
    started by the thread that first runs a parallel operation, so call this before
    torch does. Returns False, changing nothing, where threads have no own priority
    (macOS, Windows) or the system refused.
    """
    if not thread_priorities():
        return False
    tid = threading.get_native_id()
    try:
        if os.getpriority(os.PRIO_PROCESS, tid) < nice:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
    except OSError:
        return False
    return True


def gui_threads() -> int:
    """Threads for torch inside the viewer.

    Every core where the worker threads can run at background priority (Linux, see
    :func:`lower_thread_priority`): the UI thread still gets a core as soon as it needs
    one. Elsewhere every core but one, so the UI stays responsive.
    """
    return cpu_count() if thread_priorities() else max(1, cpu_count() - 1)
