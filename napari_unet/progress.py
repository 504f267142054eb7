"""Progress records yielded by long jobs, and the one-line runner for scripts."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TypeVar

R = TypeVar("R")


@dataclass(frozen=True)
class Progress:
    """How far a long job has got: ``done`` of ``total`` units of ``stage``."""

    done: int
    total: int
    stage: str = "predict"


def restaged(job: Generator[Progress, None, R], stage: str) -> Generator[Progress, None, R]:
    """``job``'s progress under another stage name; returns what ``job`` returns."""
    while True:
        try:
            step = next(job)
        except StopIteration as stop:
            return stop.value
        yield Progress(step.done, step.total, stage)


def run(job: Generator[object, None, R]) -> R:
    """Run a generator job to the end and return what it returns."""
    while True:
        try:
            next(job)
        except StopIteration as stop:
            return stop.value
