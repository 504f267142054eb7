"""Core jobs run in napari workers: the generators, and a progress bar that follows them."""

from __future__ import annotations

import importlib
import inspect
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import cache

import numpy as np
import torch
from napari.qt.threading import create_worker
from napari.utils import progress

from napari_unet.devices import gui_threads, lower_thread_priority
from napari_unet.inference.instances import instances_from_probabilities
from napari_unet.inference.zoom import unzoom
from napari_unet.progress import Progress
from napari_unet.inference.segment import Segmentation, segment_iter
from napari_unet.labels import compact_labels

STAGES = {"predict": "predicting tiles", "zoom": "predicting tiles at the new zoom",
          "tta": "predicting tiles in 8 views", "instances": "separating objects"}


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Torch on ``n`` CPU threads while the block runs; in a worker thread, at background priority.

    The worker thread's priority is lowered for good (see
    :func:`napari_unet.devices.lower_thread_priority`), before torch starts its OpenMP
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


@cache
def software_opengl() -> bool:
    """Whether OpenGL is drawn by the CPU (Mesa llvmpipe/softpipe, SwiftShader): VMs,
    remote desktops, Xvfb.

    There, napari's activity indicator (an animated icon shown while any napari progress
    bar exists) recomposes the whole OpenGL window on every frame: measured on 2 cores,
    it made segmenting a 1024² image take 2.3x as long (40 s instead of 17 s). Asks the
    current vispy canvas (napari's), as napari does for its texture limits.
    """
    from vispy.app import Canvas
    from vispy.gloo import gl
    from vispy.gloo.context import get_current_canvas

    canvas = Canvas(show=False) if get_current_canvas() is None else None
    try:
        renderer = str(gl.glGetParameter(gl.GL_RENDERER) or "").lower()
    except Exception:  # no answer from the driver: keep napari's progress bar
        return False
    finally:
        if canvas is not None:
            canvas.close()
    return any(name in renderer for name in ("llvmpipe", "softpipe", "swiftshader", "software"))


@cache
def warm_labels_layer() -> None:
    """Make napari import what its first Labels layer needs (pandas and more, ~1 s).

    Done once in a worker, so the first result shown does not freeze the viewer. An
    unattached layer is a plain object: no viewer or Qt widget is touched. Also makes
    vispy's dash patterns for line visuals (pure numpy, ~60 ms the first time, then
    cached), which napari needs for a Labels layer's polygon overlay.
    """
    from napari.layers import Labels

    Labels(np.zeros((2, 2), np.uint16))
    try:
        from vispy.visuals.line.dash_atlas import DashAtlas
    except ImportError:  # vispy moved it: the first polygon overlay just costs more
        return
    DashAtlas()


LABELS_IMPORTS = ("pandas", "scipy.linalg", "skimage.color")  # what napari's first Labels layer imports


@cache
def warm_up_in_background() -> None:
    """Import what :func:`warm_labels_layer` needs in a thread of its own, once per process.

    Those imports load compiled modules that hold the GIL for ~0.3-0.5 s in all,
    freezing the UI thread too: better while a widget opens than as the first Segment
    starts. Only imports (they are thread-safe): making a layer here could race napari's
    first layer on the main thread (pint's unit registry is set up lazily).
    """

    def imports() -> None:
        for name in LABELS_IMPORTS:
            try:
                importlib.import_module(name)
            except ImportError:  # napari stopped needing it: nothing to warm
                pass

    threading.Thread(target=imports, name="napari-unet warm-up", daemon=True).start()


def segment_job(image, model, *, foreground: bool = False, **kwargs
                ) -> Generator[Progress, None, tuple[Segmentation, np.ndarray | None]]:
    """:func:`napari_unet.inference.segment.segment_iter` with torch on :func:`gui_threads` threads,
    and labels made ready for a layer here rather than on the UI thread; with
    ``foreground``, also 1 - P(background) at the image's pixels (else None)."""
    warm_labels_layer()
    with torch_threads(gui_threads()):
        result = yield from segment_iter(image, model, **kwargs)
    shown = 1.0 - unzoom(result.probabilities[:1], result.labels.shape)[0] if foreground else None
    return replace(result, labels=compact_labels(result.labels)), shown


def set_bar(bar, value: int, maximum: int | None = None, text: str | None = None) -> None:
    """Move a ``QProgressBar`` with an ordinary (queued, coalesced) repaint.

    ``QProgressBar.setValue`` repaints at once, inside the call and holding the GIL; in
    a window with napari's OpenGL canvas that recomposes the whole window (~25 ms with
    software OpenGL, ~0.3 s the first time the bar shows), and the worker waits too.
    With updates off during the change, Qt paints the bar with the next frame instead.
    """
    bar.setUpdatesEnabled(False)
    try:
        if maximum is not None:
            bar.setMaximum(maximum)
        bar.setValue(value)
        if text is not None:
            bar.setFormat(text)
    finally:
        bar.setUpdatesEnabled(True)  # schedules the repaint


class JobError(Exception):
    """Carries a job's RuntimeError out of the worker.

    superqt's generator workers take a RuntimeError for "the worker was deleted" and
    end silently, without ``errored`` or ``finished``; torch raises RuntimeError for
    many real failures, so they must travel as another type.
    """


def _guarded(job: Callable[..., Generator]) -> Callable[..., Generator]:
    def guarded(*args, **kwargs):
        try:
            return (yield from job(*args, **kwargs))
        except RuntimeError as exc:
            raise JobError(str(exc)) from exc

    guarded.__name__ = getattr(job, "__name__", "job")
    return guarded


def instances_job(probabilities, params, task: str, shape=None):
    """Instances from cached probabilities, made ready for a layer off the UI thread."""
    return compact_labels(instances_from_probabilities(probabilities, params, task, shape))


def start_job(
    session,
    job: Callable[..., Generator],
    *args,
    desc: str,
    on_progress: Callable[[Progress], None] | None = None,
    on_result: Callable[[object], None],
    on_error: Callable[[Exception], None],
    on_finished: Callable[[], None] | None = None,
    show_progress: bool = True,
    **kwargs,
):
    """Run ``job`` (a generator yielding :class:`Progress`, or a quick plain function) in
    a napari worker tracked by ``session``.

    Callbacks run on the main thread. ``on_result`` is skipped when the run was
    cancelled, and no callback runs once the viewer is closing: a late result never
    lands in a layer, and widgets already deleted are not touched. With
    ``show_progress``, napari's activity panel shows a progress bar, except with
    software OpenGL (see :func:`software_opengl`); ``on_progress`` gets every step.
    """
    if inspect.isgeneratorfunction(job):
        job = _guarded(job)
    worker = create_worker(job, *args, _start_thread=False, _ignore_errors=True, **kwargs)
    bar = progress(total=0, desc=desc) if show_progress and not software_opengl() else None

    def yielded(step: Progress) -> None:
        if bar is not None:
            if step.total and bar.total != step.total:
                bar.total = step.total
            bar.update(step.done - bar.n)
            bar.set_description(f"{desc}: {STAGES.get(step.stage, step.stage)}")
        if on_progress is not None and not session.closed:
            on_progress(step)

    def returned(result) -> None:
        if not worker.abort_requested and not session.closed:
            on_result(result)

    def errored(exc: Exception) -> None:
        if not session.closed:
            on_error(exc.__cause__ if isinstance(exc, JobError) else exc)

    def finished() -> None:
        if bar is not None:
            bar.close()
        if on_finished is not None and not session.closed:
            on_finished()

    if hasattr(worker, "yielded"):
        worker.yielded.connect(yielded)
    worker.returned.connect(returned)
    worker.errored.connect(errored)
    worker.finished.connect(finished)
    session.track(worker)
    worker.start()
    return worker
