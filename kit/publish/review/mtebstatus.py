"""What mteb says about the pull request's tasks and models: superseded, beta, registered.

``task_status`` asks mteb's task metadata (``superseded_by``, ``is_beta``) for each task a
changed file names; ``registered`` is the results CI's test: the name among
``mteb.get_model_metas()``.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TaskStatus:
    """A task as mteb knows it: unknown, superseded (by which task), beta."""

    task: str
    known: bool
    superseded_by: str | None = None
    is_beta: bool = False

    @property
    def flagged(self) -> bool:
        return not self.known or self.superseded_by is not None or self.is_beta

    def text(self) -> str:
        if not self.known:
            return "not a task of this mteb"
        said = []
        if self.superseded_by:
            said.append(f"superseded by {self.superseded_by}")
        if self.is_beta:
            said.append("beta")
        return ", ".join(said) or "current"

    def as_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "known": self.known,
            "superseded_by": self.superseded_by,
            "is_beta": self.is_beta,
        }


def task_status(names: list[str]) -> list[TaskStatus]:
    """mteb's word on each task name (sorted, each once)."""
    import mteb

    out = []
    for name in sorted(set(names)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a renamed task warns; its metadata is the answer
                meta = mteb.get_task(name).metadata
        except KeyError:
            out.append(TaskStatus(name, False))
            continue
        out.append(TaskStatus(name, True, meta.superseded_by, bool(meta.is_beta)))
    return out


@functools.cache
def _registry_names() -> frozenset[str]:
    import mteb

    return frozenset(m.name for m in mteb.get_model_metas() if m.name)


def registered(name: str) -> bool:
    """Whether ``name`` is in mteb's model registry (the results CI's test_model_implementation)."""
    return name in _registry_names()
