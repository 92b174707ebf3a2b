"""Zero-shot per task, by mteb's own rules, from what a bundle declares of its model.

A model is zero-shot on a task when the task is none of its training datasets. Those are the
declared ones (model_meta.json's ``training_datasets``: ``--training-datasets`` or the folder's
training.json) plus, through ``adapted_from``, its parent's in mteb's registry, each widened
by mteb's similar tasks (``STSBenchmark`` also covers ``STSBenchmark.v2``...):
``ModelMeta.get_training_datasets``, ``is_zero_shot_on`` and ``zero_shot_percentage`` decide,
on a ModelMeta that carries only those two fields. Unknown training data gives ``None``
(unknown), never "zero-shot". ``zero_shot`` is the one function report, compare and review
ask; ``declared`` reads the two fields from a model_meta.json value, ``of_records`` from a
bundle's or run folder's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kit.runfolder import MODEL_META


@dataclass(frozen=True)
class ZeroShot:
    """Per task: True (zero-shot), False (trained on it or a similar task), None (unknown);
    mteb's zero-shot percentage over the tasks; the training datasets mteb counted."""

    tasks: dict[str, bool | None]
    percentage: int | None
    training: tuple[str, ...] | None
    adapted_from: str | None
    note: str

    def to_json(self) -> dict[str, Any]:
        """The plain form report and compare put in their JSON."""
        return {
            "tasks": dict(self.tasks),
            "percentage": self.percentage,
            "training_datasets": None if self.training is None else list(self.training),
            "adapted_from": self.adapted_from,
            "note": self.note,
        }


def zero_shot(
    training_datasets: Iterable[str] | None, adapted_from: str | None, tasks: Sequence[str]
) -> ZeroShot:
    """Whether a model with these training datasets (None: unknown) and parent is zero-shot
    on each of ``tasks``, as mteb decides."""
    try:
        from mteb.models.model_meta import ModelMeta
    except ImportError:  # verify runs without mteb: say so rather than guess
        return ZeroShot({t: None for t in tasks}, None, None, adapted_from, "mteb not installed")
    declared = None if training_datasets is None else set(training_datasets)
    meta = ModelMeta.model_construct(training_datasets=declared, adapted_from=adapted_from)
    counted = meta.get_training_datasets()
    per_task: dict[str, bool | None] = {t: meta.is_zero_shot_on([t]) for t in tasks}
    if counted is None:
        note = "training data not declared: zero-shot unknown"
    else:
        parent = f" and {adapted_from}'s in mteb's registry" if adapted_from else ""
        note = f"declared training datasets{parent}, with mteb's similar tasks"
    return ZeroShot(
        per_task,
        meta.zero_shot_percentage(list(tasks)) if tasks else None,
        None if counted is None else tuple(sorted(counted)),
        adapted_from,
        note,
    )


def declared(model_meta: Any) -> tuple[list[str] | None, str | None]:
    """``training_datasets`` and ``adapted_from`` of a model_meta.json value (None: absent)."""
    if not isinstance(model_meta, dict):
        return None, None
    names = model_meta.get("training_datasets")
    parent = model_meta.get("adapted_from")
    if isinstance(names, dict):  # older mteb wrote {task: splits}
        names = list(names)
    ok = isinstance(names, list) and all(isinstance(n, str) for n in names)
    training = [str(n) for n in names] if ok and isinstance(names, list) else None
    return training, (parent if isinstance(parent, str) and parent else None)


def meta_member(run: dict[str, Any]) -> str:
    """The model_meta.json member of a run's results folder."""
    return f"{run['results_dir']}/{MODEL_META}"


def of_records(
    run: dict[str, Any], read_json: Callable[[str], Any], tasks: Sequence[str]
) -> ZeroShot:
    """Zero-shot per task of a bundle or run folder (``read_json``: a member's JSON value,
    raising KeyError, OSError or ValueError when it is missing or refused)."""
    try:
        meta = read_json(meta_member(run))
    except (KeyError, OSError, ValueError):
        meta = None
    training, parent = declared(meta)
    return zero_shot(training, parent, tasks)
