"""Published reference scores, and the comparison of a bundle's scores with them.

The kit ships the published scores of its default model and of BAAI/bge-small-en-v1.5
(``published/<org__name>.json``, built from the results repository at the commit each file
records), so ``--reference published`` needs no file and no network: ``load_reference`` gives
a reference to be resolved against the bundle's model (``Reference.resolved``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.bundle.jsonread import parse
from kit.bundle.scores import ScoreError, aggregates, task_scores
from kit.errors import ExitCode, KitError

DEFAULT_TOLERANCE = 0.001  # per task, 0-1 scale (0.1 point)
DEFAULT_MEAN_TOLERANCE = 0.005  # benchmark means ("within 0.5 points")
PUBLISHED = "published"  # --reference published: the shipped scores of the bundle's model
SHIPPED = Path(__file__).with_name("published")


def shipped_models() -> list[str]:
    """The models whose published scores the kit ships."""
    return sorted(p.stem.replace("__", "/", 1) for p in SHIPPED.glob("*.json"))


def published_reference(model: str) -> Path:
    """The shipped reference file of ``model``; NOT_FOUND when the kit ships none."""
    path = SHIPPED / f"{model.replace('/', '__')}.json"
    if "/" not in model or not path.is_file():
        raise KitError(
            f"no published reference shipped for {model} (shipped: "
            f"{', '.join(shipped_models())}); build one from a results checkout: "
            f"repro-kit reference {model} --results-repo DIR -o FILE",
            ExitCode.NOT_FOUND,
        )
    return path


@dataclass
class Reference:
    """Per-task main scores from a published source."""

    source: str
    scores: dict[str, float]
    raw_results: dict[str, dict[str, Any]]  # task -> raw mteb file, when given as a folder
    deferred: bool = False  # "published": the shipped scores of the model, once it is known

    def resolved(self, model: str) -> Reference:
        """This reference for a bundle of ``model`` (the shipped one, when deferred)."""
        return load_reference(published_reference(model)) if self.deferred else self

    def score_for(self, task: str, splits: list[str]) -> float | None:
        if task in self.raw_results:
            raw = self.raw_results[task]
            use = [s for s in splits if s in raw.get("scores", {})] or None
            try:
                return task_scores(raw, use)["main_score"]
            except ScoreError:
                return None
        return self.scores.get(task)


def published_name(value: object, model: str) -> Path | None:
    """The shipped reference that ``published`` (``model``'s) or ``published:ORG/NAME``
    names; None when ``value`` names neither (a file or folder)."""
    text = str(value)
    if text == PUBLISHED:
        return published_reference(model)
    if text.startswith(PUBLISHED + ":"):
        return published_reference(text.split(":", 1)[1])
    return None


def load_reference(path: Path | str) -> Reference:
    """A JSON of per-task scores (``task_main_scores`` or a flat map), a folder of mteb files,
    or ``published`` (resolved later against the bundle's model)."""
    if str(path) == PUBLISHED:
        return Reference(PUBLISHED, {}, {}, deferred=True)
    if str(path).startswith(PUBLISHED + ":"):
        path = published_reference(str(path).split(":", 1)[1])
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
