"""The viewer's thread policy: background priority for worker threads."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from napari_unet._qt import threads
from napari_unet._qt.threads import BACKGROUND_NICE, gui_threads, lower_thread_priority
from napari_unet.devices import cpu_count

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="threads have their own nice on Linux")


def in_thread(fn):
    """Run ``fn`` in a fresh thread; returns its result (exceptions re-raised here)."""
    out = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 (re-raised below)
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def nice_of(tid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, tid)


@linux_only
def test_lowers_only_the_calling_thread_and_what_it_starts():
    main = nice_of(threading.get_native_id())

    def work():
        assert lower_thread_priority()
        child = in_thread(lambda: nice_of(threading.get_native_id()))
        return nice_of(threading.get_native_id()), child

    own, child = in_thread(work)
    assert own == max(main, BACKGROUND_NICE)
    assert child == own  # threads it starts (torch's OpenMP team) inherit it
    assert nice_of(threading.get_native_id()) == main  # the caller of the thread is untouched


@linux_only
def test_never_raises_a_priority():
    def work():
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, 15)
        assert lower_thread_priority(5)  # already lower than asked: left at 15
        after_lower_request = nice_of(tid)
        lower_thread_priority(18)
        return after_lower_request, nice_of(tid)

    assert in_thread(work) == (15, 18)


def test_without_thread_priorities_nothing_changes_and_a_core_is_left(monkeypatch):
    monkeypatch.setattr(threads, "thread_priorities", lambda: False)

    def work():
        before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) if hasattr(os, "getpriority") else 0
        ok = lower_thread_priority()
        after = os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) if hasattr(os, "getpriority") else 0
        return ok, before, after

    ok, before, after = in_thread(work)
    assert not ok and before == after
    assert gui_threads() == max(1, cpu_count() - 1)


@linux_only
def test_with_thread_priorities_torch_gets_every_core():
    assert threads.thread_priorities()
    assert gui_threads() == cpu_count()
