"""Progress records yielded by long jobs, and the one-line runner for scripts."""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TypeVar

R = TypeVar("R")
S = TypeVar("S")
T = TypeVar("T")


@dataclass(frozen=True)
class Progress:
    """How far a long job has got: ``done`` of ``total`` units of ``stage``."""

    done: int
    total: int
    stage: str = "predict"


def run(job: Generator[S, None, R], on_step: Callable[[S], object] | None = None) -> R:
    """Run a generator job to the end, handing each yielded step to ``on_step``; return
    what the job returns.
    """
    while True:
        try:
            step = next(job)
        except StopIteration as stop:
            return stop.value
        if on_step is not None:
            on_step(step)


def relay(job: Generator[S, None, R], convert: Callable[[S], T]) -> Generator[T, None, R]:
    """Yield ``convert(step)`` for each step of ``job``; return what ``job`` returns."""
    while True:
        try:
            step = next(job)
        except StopIteration as stop:
            return stop.value
        yield convert(step)


def restaged(job: Generator[Progress, None, R], stage: str) -> Generator[Progress, None, R]:
    """``job``'s progress under another stage name; returns what ``job`` returns."""
    return (yield from relay(job, lambda step: Progress(step.done, step.total, stage)))
