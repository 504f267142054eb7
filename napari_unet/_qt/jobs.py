"""Core jobs run in napari workers: the generators, and a progress bar that follows them."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator
from dataclasses import replace

import numpy as np
from napari.qt.threading import create_worker
from napari.utils import progress

from napari_unet._qt._perf import software_opengl, warm_labels_layer
from napari_unet._qt.threads import gui_threads, torch_threads
from napari_unet.inference.images import from_canonical, to_canonical
from napari_unet.inference.predict import as_float
from napari_unet.inference.segment import Segmentation, labels_from, segment_iter
from napari_unet.inference.zoom import unzoom
from napari_unet.labels import compact_labels
from napari_unet.progress import Progress

STAGES = {"predict": "predicting tiles", "zoom": "predicting tiles at the new zoom",
          "tta": "predicting tiles in 8 views", "instances": "separating objects", "measuring": "measuring the objects",
          "window": "measuring the objects in the central window",
          "orientations": "predicting the ZY and ZX planes"}


def segment_job(image, model, *, foreground: bool = False, **kwargs
                ) -> Generator[Progress, None, tuple[Segmentation, np.ndarray | None]]:
    """:func:`napari_unet.inference.segment.segment_iter` with torch on :func:`gui_threads` threads,
    and labels made ready for a layer here rather than on the UI thread; with
    ``foreground``, also 1 - P(background) at the image's pixels (else None).
    """
    warm_labels_layer()
    with torch_threads(gui_threads()):
        result = yield from segment_iter(image, model, **kwargs)
    shown = _foreground(result, kwargs.get("axes")) if foreground else None
    return replace(result, labels=compact_labels(result.labels)), shown


def _foreground(result: Segmentation, axes: str | None) -> np.ndarray:
    """1 - P(background) at the labels' pixels, in their axes' order (the probabilities' is [T][Z]YX)."""
    spatial = None if axes is None else axes.upper().replace("C", "")
    shape = result.labels.shape if spatial is None else to_canonical(result.labels, spatial)[0].shape
    shown = 1.0 - unzoom(as_float(result.probabilities[:1]), shape)[0]
    return shown if spatial is None else from_canonical(shown, spatial)


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


def instances_job(prediction, params):
    """Labels from a cached :class:`~napari_unet._qt.session.Prediction`, made ready for a layer off the UI thread."""
    return compact_labels(labels_from(prediction.probabilities, params, prediction.task, prediction.shape,
                                      prediction.axes, prediction.spacing))


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


def toggle_pause(worker, button) -> bool | None:
    """Pause a running generator job, or resume a paused one; ``button`` reads what a press
    does next. Returns True once resumed, False once paused, None if there is nothing to pause.
    """
    if worker is None or not hasattr(worker, "pause"):
        return None
    if worker.is_paused:
        worker.resume()
        button.setText("Pause")
        return True
    worker.pause()
    button.setText("Resume")
    return False
