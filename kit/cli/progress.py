"""Progress bars: one over tasks (here) and one within a task (sentence-transformers' own)."""

from __future__ import annotations

import sys
from typing import Any


class TqdmReporter:
    """A task-level bar with ETA; the encoder draws the in-task bar beneath it."""

    def __init__(self) -> None:
        self._bar: Any = None

    def start(self, total: int, done: int) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(
            total=total,
            initial=done,
            desc="tasks",
            unit="task",
            file=sys.stderr,
            position=0,
            leave=True,
            dynamic_ncols=True,
        )

    def task_started(self, name: str) -> None:
        if self._bar is not None:
            self._bar.set_description(f"tasks [{name}]")

    def task_finished(self, name: str, score: float | None, skipped: bool) -> None:
        if self._bar is None:
            return
        if not skipped:
            self._bar.update(1)
        if score is not None:
            self._bar.set_postfix_str(f"{name}={score:.4f}" + (" (done before)" if skipped else ""))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.set_description("tasks")
            self._bar.close()
            self._bar = None
