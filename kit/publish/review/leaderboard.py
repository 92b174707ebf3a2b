"""The leaderboard row a pull request would give, through mteb's own table and zero-shot.

For each model a verified bundle brings, and each benchmark (the bundles' declared one, else
every benchmark holding all of the bundles' tasks), the model's folder as HEAD holds it is read
by mteb's ``ResultCache`` and tabulated by the benchmark's ``_create_summary_table``, the
function behind the leaderboard: Mean (Task), Mean (TaskType), the per-type means and the
zero-shot percentage from the model's declared training data (mteb's ``_zero_shot_pct_cached``).
Each task the model lacks is added as a missing score, so the row is the leaderboard's (no mean
while a task is missing); the means over the tasks present are given beside it.

mteb's table joins on its model registry: a new model's ``ModelMeta`` (the bundle's
model_meta.json) is registered in-process first, and the registry is restored afterwards. The
table computes zero-shot for every registered model, which takes seconds; the training data of
the reviewed models is resolved with the whole registry, then the table is built with the
registry narrowed to them (``_Registry``).
"""

from __future__ import annotations

import json
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MEAN_TASK = "Mean (Task)"
MEAN_TYPE = "Mean (TaskType)"
_CACHES = (
    "_static_model_meta",
    "_meta_df_no_zs",
    "_meta_df_with_zs",
    "_training_datasets_cached",
    "_zero_shot_pct_cached",
)


@dataclass(frozen=True)
class ModelFiles:
    """A model of the pull request: its name, its files at HEAD (paths under ``results/``),
    its model_meta.json as a bundle yields it, and the bundles' benchmarks and tasks."""

    name: str
    files: dict[str, bytes]
    meta: bytes | None
    benchmarks: tuple[str, ...]
    tasks: tuple[str, ...]


@dataclass(frozen=True)
class BoardRow:
    """One model on one benchmark, as the leaderboard would show it."""

    model: str
    benchmark: str
    tasks: int
    missing: tuple[str, ...]
    mean_task: float | None  # None while a task is missing, as on the leaderboard
    mean_task_type: float | None
    present_mean_task: float | None  # over the tasks present
    present_mean_task_type: float | None
    type_means: dict[str, float | None] = field(default_factory=dict)  # over the tasks present
    zero_shot: int | None = None  # percent of the benchmark's tasks; None: no training data

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "benchmark": self.benchmark,
            "tasks": self.tasks,
            "missing_tasks": list(self.missing),
            "mean_task": self.mean_task,
            "mean_task_type": self.mean_task_type,
            "present_mean_task": self.present_mean_task,
            "present_mean_task_type": self.present_mean_task_type,
            "type_means": self.type_means,
            "zero_shot_percent": self.zero_shot,
        }


class _Registry:
    """mteb's model registry, added to and narrowed for one table, then restored."""

    def __init__(self) -> None:
        from mteb.benchmarks import _create_table as table
        from mteb.models.model_implementations import MODEL_REGISTRY

        self.table, self.registry = table, MODEL_REGISTRY
        self.saved = dict(MODEL_REGISTRY)

    def clear(self, names: tuple[str, ...] = _CACHES) -> None:
        for name in names:
            cached = getattr(self.table, name, None)
            if cached is not None and hasattr(cached, "cache_clear"):
                cached.cache_clear()

    def add(self, metas: dict[str, Any]) -> None:
        self.registry.update(metas)
        self.clear()

    def narrow(self, names: list[str]) -> None:
        """Resolve the training data of ``names`` with the whole registry, then keep only them."""
        for name in names:
            self.table._training_datasets_cached(name)
        keep = {n: self.registry[n] for n in names if n in self.registry}
        self.registry.clear()
        self.registry.update(keep)
        self.clear(_CACHES[:3])

    def restore(self) -> None:
        self.registry.clear()
        self.registry.update(self.saved)
        self.clear()


@contextmanager
def _registry() -> Iterator[_Registry]:
    reg = _Registry()
    try:
        yield reg
    finally:
        reg.restore()


def _model_meta(model: ModelFiles) -> Any:
    from mteb.models.model_meta import ModelMeta

    if model.meta is None:
        return None
    try:
        try:
            return ModelMeta.model_validate_json_resolved(model.meta)
        except AttributeError:
            return ModelMeta.model_validate(json.loads(model.meta))
    except ValueError:  # pydantic's ValidationError too: no row for this model
        return None


def _benchmarks(model: ModelFiles) -> list[Any]:
    """The bundles' declared benchmarks, else every benchmark holding all their tasks."""
    import mteb

    declared = []
    for name in model.benchmarks:
        try:
            declared.append(mteb.get_benchmark(name))
        except (KeyError, ValueError):  # a benchmark this mteb does not know: search instead
            continue
    if declared:
        return declared
    want = set(model.tasks)
    return [b for b in mteb.get_benchmarks() if want <= {t.metadata.name for t in b.tasks} and want]


def _value(row: dict[str, Any], column: str) -> Any:
    value = row.get(column)
    return None if value is None or value != value else value


def _table_row(bench: Any, frame: Any, name: str) -> dict[str, Any]:
    """mteb's summary row of ``name`` in ``bench``'s table of ``frame`` ({} when none)."""
    import polars as pl

    if frame.is_empty():
        return {}
    table = bench._create_summary_table(frame)
    if table.is_empty or "Model" not in table.df.columns:
        return {}
    rows = table.df.filter(pl.col("Model") == name).to_dicts()
    return rows[0] if rows else {}


def _padded(frame: Any, name: str, missing: list[str]) -> Any:
    """``frame`` with a missing score for each task ``name`` lacks (the leaderboard's view)."""
    import polars as pl

    if not missing:
        return frame
    pad = pl.DataFrame({"model_name": [name] * len(missing), "task_name": missing})
    return pl.concat([frame, pad], how="diagonal_relaxed")


def _row(bench: Any, frame: Any, name: str) -> BoardRow | None:
    import polars as pl

    if "model_name" not in frame.columns:  # mteb read no result of this benchmark
        return None
    mine = frame.filter(pl.col("model_name") == name)
    if mine.is_empty():
        return None
    names = [t.metadata.name for t in bench.tasks]
    present = set(mine.get_column("task_name").to_list())
    missing = [t for t in names if t not in present]
    board = _table_row(bench, _padded(mine, name, missing), name)
    here = _table_row(bench, mine, name) if missing else board
    types = sorted({t.metadata.type for t in bench.tasks})
    zero = _value(board, "Zero-shot")
    return BoardRow(
        model=name,
        benchmark=bench.name,
        tasks=len(names),
        missing=tuple(missing),
        mean_task=_value(board, MEAN_TASK),
        mean_task_type=_value(board, MEAN_TYPE),
        present_mean_task=_value(here, MEAN_TASK),
        present_mean_task_type=_value(here, MEAN_TYPE),
        type_means={t: _value(here, t) for t in types if t in here},
        zero_shot=None if zero is None or zero < 0 else int(zero),
    )


def leaderboard_rows(models: list[ModelFiles]) -> list[BoardRow]:
    """Each model's row on each of its benchmarks, by mteb's leaderboard table."""
    from mteb.cache import ResultCache

    from kit.publish.review.mtebstatus import registered

    rows: list[BoardRow] = []
    with tempfile.TemporaryDirectory(prefix="repro-kit-board-") as tmp, _registry() as reg:
        root = Path(tmp)
        for model in models:
            for rel, data in model.files.items():
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_bytes(data)
        metas = {m.name: _model_meta(m) for m in models if not registered(m.name)}
        reg.add({n: meta for n, meta in metas.items() if meta is not None})
        known = [m for m in models if m.name in reg.registry]  # the table joins on it
        cache, frames = ResultCache(root), []
        by_bench: dict[str, tuple[Any, list[str]]] = {}
        for model in known:
            for bench in _benchmarks(model):
                by_bench.setdefault(bench.name, (bench, []))[1].append(model.name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for bench, names in by_bench.values():
                results = cache.load_results(models=names, tasks=bench.tasks)
                frames.append((bench, names, results._to_results_df(tasks=bench.tasks)))
            reg.narrow([m.name for m in known])
            for bench, names, frame in frames:
                rows.extend(r for n in names if (r := _row(bench, frame, n)) is not None)
    return rows
