"""Published reference scores, and the comparison of a bundle's scores with them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.bundle.jsonread import parse
from kit.bundle.scores import ScoreError, aggregates, task_scores
from kit.errors import ExitCode, KitError

DEFAULT_TOLERANCE = 0.001  # per task, 0-1 scale (0.1 point)
DEFAULT_MEAN_TOLERANCE = 0.005  # benchmark means ("within 0.5 points")


@dataclass
class Reference:
    """Per-task main scores from a published source."""

    source: str
    scores: dict[str, float]
    raw_results: dict[str, dict[str, Any]]  # task -> raw mteb file, when given as a folder

    def score_for(self, task: str, splits: list[str]) -> float | None:
        if task in self.raw_results:
            raw = self.raw_results[task]
            use = [s for s in splits if s in raw.get("scores", {})] or None
            try:
                return task_scores(raw, use)["main_score"]
            except ScoreError:
                return None
        return self.scores.get(task)


def load_reference(path: Path) -> Reference:
    """A JSON of per-task scores (``task_main_scores`` or a flat map) or a folder of mteb files."""
    path = Path(path)
    if path.is_dir():
        raw_results = {}
        for f in sorted(path.rglob("*.json")):
            try:
                data = parse(f.read_bytes(), allow_nan=True)
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and "task_name" in data and "scores" in data:
                raw_results[data["task_name"]] = data
        if not raw_results:
            raise KitError(f"no mteb result files found under {path}", ExitCode.NOT_FOUND)
        return Reference(str(path), {}, raw_results)
    if not path.is_file():
        raise KitError(f"reference {path} not found", ExitCode.NOT_FOUND)
    try:
        data = parse(path.read_bytes())
    except OSError as e:
        raise KitError(f"cannot read reference {path}: {e.strerror or e}", ExitCode.USAGE) from None
    except ValueError as e:
        raise KitError(f"reference {path}: {e}", ExitCode.USAGE) from None
    scores = data.get("task_main_scores", data) if isinstance(data, dict) else None
    if not isinstance(scores, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in scores.values()
    ):
        raise KitError(
            f"reference {path}: expected 'task_main_scores' mapping task -> score", ExitCode.USAGE
        )
    return Reference(str(path), {k: float(v) for k, v in scores.items()}, {})


def compare_with_reference(
    tasks: dict[str, Any], ref: Reference, tolerance: float, mean_tolerance: float
) -> dict[str, Any]:
    """Per-task deltas and benchmark-mean deltas over the tasks both sides have."""
    rows = []
    ours, theirs = {}, {}
    for name, t in sorted(tasks.items()):
        r = ref.score_for(name, t["splits"])
        if r is None:
            rows.append(
                {
                    "task": name,
                    "type": t["type"],
                    "score": t["main_score"],
                    "reference": None,
                    "delta": None,
                    "ok": None,
                }
            )
            continue
        delta = t["main_score"] - r
        rows.append(
            {
                "task": name,
                "type": t["type"],
                "score": t["main_score"],
                "reference": r,
                "delta": delta,
                "ok": abs(delta) <= tolerance,
            }
        )
        ours[name], theirs[name] = t["main_score"], r
    types = {n: tasks[n]["type"] for n in ours}
    a, b = aggregates(ours, types), aggregates(theirs, types)
    means = []
    if ours:
        for key in ("mean_task", "mean_type"):
            d = a[key] - b[key]
            means.append(
                {
                    "mean": key,
                    "score": a[key],
                    "reference": b[key],
                    "delta": d,
                    "ok": abs(d) <= mean_tolerance,
                    "n_tasks": len(ours),
                }
            )
    return {
        "source": ref.source,
        "tolerance": tolerance,
        "mean_tolerance": mean_tolerance,
        "tasks": rows,
        "means": means,
    }
