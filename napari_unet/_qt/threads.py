"""The viewer's thread policy: how many torch threads its workers use, and at what priority.

The UI thread must win a core whenever it needs one while a worker trains or predicts:
on Linux the workers run at a lower priority (nice), elsewhere they leave a core free.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import torch

from napari_unet.devices import cpu_count

BACKGROUND_NICE = 10  # Linux nice of worker threads in the viewer: the UI thread (nice 0) gets ~9x their CPU share


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


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Torch on ``n`` CPU threads while the block runs; in a worker thread, at background priority.

    The worker thread's priority is lowered for good (see
    :func:`lower_thread_priority`), before torch starts its OpenMP
    threads, which inherit it: the UI thread wins a core whenever it needs one. The
    main thread is never lowered.
    """
    if threading.current_thread() is not threading.main_thread():
        lower_thread_priority()
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
