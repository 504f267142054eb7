"""Core jobs run in napari workers: the generators, and a progress bar that follows them."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager

import torch
from napari.qt.threading import create_worker
from napari.utils import progress

from ..devices import gui_threads
from ..progress import Progress
from ..segment import Segmentation, segment_iter

STAGES = {"predict": "predicting tiles", "instances": "separating objects"}


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Limit torch's CPU threads while the block runs, so the viewer keeps a core."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def segment_job(image, model, **kwargs) -> Generator[Progress, None, Segmentation]:
    """:func:`napari_unet.segment.segment_iter` with torch on :func:`gui_threads` threads."""
    with torch_threads(gui_threads()):
        return (yield from segment_iter(image, model, **kwargs))


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
    cancelled or the viewer is closing, so a late result never lands in a layer.
    """
    worker = create_worker(job, *args, _start_thread=False, _ignore_errors=True, **kwargs)
    bar = progress(total=0, desc=desc) if show_progress else None

    def yielded(step: Progress) -> None:
        if step.total and bar.total != step.total:
            bar.total = step.total
        bar.update(step.done - bar.n)
        bar.set_description(f"{desc}: {STAGES.get(step.stage, step.stage)}")
        if on_progress is not None:
            on_progress(step)

    def returned(result) -> None:
        if not worker.abort_requested and not session.closed:
            on_result(result)

    def finished() -> None:
        if bar is not None:
            bar.close()
        if on_finished is not None:
            on_finished()

    if bar is not None and hasattr(worker, "yielded"):
        worker.yielded.connect(yielded)
    worker.returned.connect(returned)
    worker.errored.connect(on_error)
    worker.finished.connect(finished)
    session.track(worker)
    worker.start()
    return worker
