"""Imports in a background thread that do not freeze the viewer: no garbage collection meanwhile.

Importing PyTorch and its companions creates a few hundred thousand objects; each full
collection of Python's garbage collector then walks all of them, holding the GIL, and
the UI thread waited 50-170 ms at a time, five times while the first dock opened
(measured with ``gc.callbacks``: every stall over 40 ms was a generation-2 collection).
So the collector is paused while background imports run and, when the last of them
ends, everything they made is frozen (``gc.freeze``): long-lived modules and classes,
which later collections then skip as well. Frozen objects are never collected, so a
layer that was open then and is removed later would keep its memory: :func:`thaw` (the
session calls it when a layer is removed or the viewer closes) gives them back to the
collector and collects once. :func:`import_thread` makes the thread they run in. Standard
library only.
"""

from __future__ import annotations

import atexit
import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

EXIT_WAIT_S = 120  # at exit, how long the process waits for an import thread still running
_threads: list[threading.Thread] = []
_lock = threading.Lock()
_running = [0, False]  # imports under way; whether the collector was enabled before the first
_frozen = [False, False]  # objects frozen that thaw has not given back; thaw asked while imports ran


@contextmanager
def without_gc_pauses() -> Iterator[None]:
    """Pause the garbage collector while the body runs (nested and concurrent uses count)."""
    with _lock:
        if _running[0] == 0:
            _running[1] = gc.isenabled()
            gc.disable()
        _running[0] += 1
    try:
        yield
    finally:
        with _lock:
            _running[0] -= 1
            if _running[0] == 0 and _running[1]:
                if not _frozen[1]:  # (a layer removed meanwhile must stay collectable)
                    gc.freeze()  # not collected: that is the pause avoided (the imports leave little garbage)
                    _frozen[0] = True
                _frozen[1] = False
                gc.enable()


def thaw(*_event) -> None:
    """Give what :func:`without_gc_pauses` froze back to the collector, and collect now (one
    pause, as the user removes a layer, rather than its memory kept). A no-op when nothing is frozen.
    """
    with _lock:
        _frozen[1] = _running[0] > 0
        if not _frozen[0]:
            return
        _frozen[0] = False
        gc.unfreeze()
        if _frozen[1]:
            return  # the collector is paused: it collects once the imports are done
    gc.collect()


def import_thread(work: Callable[[], None], name: str) -> threading.Thread:
    """A thread (not started) to run ``work``, imports, in the background; the process waits for
    it at exit.

    A daemon, so it never keeps a process alive by itself; but a daemon thread still loading
    PyTorch's libraries when the interpreter ends is stopped inside C++ code, and the
    process crashed (SIGSEGV) when napari was closed while a dock was still loading. So
    before the interpreter ends (atexit) it is waited for, up to ``EXIT_WAIT_S``.
    """
    thread = threading.Thread(target=work, name=name, daemon=True)
    _threads.append(thread)
    return thread


@atexit.register
def _wait_for_import_threads() -> None:
    for thread in _threads:
        if thread.is_alive():
            thread.join(EXIT_WAIT_S)
