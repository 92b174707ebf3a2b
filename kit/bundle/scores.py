"""Scores from mteb's raw result files, and benchmark means as MTEB's leaderboard takes them.

A task's main score is the mean of ``main_score`` over its evaluated (split, subset) entries
(``mteb.TaskResult.get_score``). Benchmark means: over tasks, per task type, and over task
types (the mean of the per-type means), as the leaderboard's "Mean (Task)" and
"Mean (TaskType)" columns.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from typing import Any


class ScoreError(ValueError):
    """A raw result file does not hold what a score needs."""


def task_scores(raw: Mapping[str, Any], splits: list[str] | None = None) -> dict[str, Any]:
    """Per (split, subset) main scores and the task's main score from one mteb result file."""
    scores = raw.get("scores")
    if not isinstance(scores, dict) or not scores:
        raise ScoreError("no 'scores' object")
    use = splits or sorted(scores)
    entries: list[dict[str, Any]] = []
    for split in use:
        if split not in scores:
            raise ScoreError(f"split '{split}' missing")
        if not isinstance(scores[split], list) or not scores[split]:
            raise ScoreError(f"split '{split}' has no subsets")
        for item in scores[split]:
            value = item.get("main_score") if isinstance(item, dict) else None
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise ScoreError(f"split '{split}' has an entry without a finite main_score")
            entries.append(
                {
                    "split": split,
                    "subset": str(item.get("hf_subset", "default")),
                    "main_score": float(value),
                }
            )
    entries.sort(key=lambda e: (e["split"], e["subset"]))
    return {
        "main_score": sum(e["main_score"] for e in entries) / len(entries),
        "entries": entries,
    }


def aggregates(task_main: Mapping[str, float], task_types: Mapping[str, str]) -> dict[str, Any]:
    """Mean over tasks, mean per task type, and mean over task types."""
    if not task_main:
        return {"n_tasks": 0, "mean_task": None, "mean_per_type": {}, "mean_type": None}
    by_type: dict[str, list[float]] = defaultdict(list)
    for name, score in task_main.items():
        by_type[task_types.get(name, "Unknown")].append(score)
    per_type = {t: sum(v) / len(v) for t, v in sorted(by_type.items())}
    return {
        "n_tasks": len(task_main),
        "mean_task": sum(task_main.values()) / len(task_main),
        "mean_per_type": per_type,
        "mean_type": sum(per_type.values()) / len(per_type),
    }


def close(a: float | None, b: float | None, tol: float = 1e-12) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= tol
