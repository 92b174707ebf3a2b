"""A fine-tuned folder's training record, read for the run (format: kit.bundle.training).

A folder holding ``training.json`` gets it recorded in run.json (``model.training``, bound to
the model digest, which covers the file). The mteb tasks whose data it trained on are the
tasks its data entries name (each checked against mteb's definition of the task's dataset)
and the tasks whose dataset is an entry's dataset. Those are the model's declared training
datasets when none are given; given ones must name every one of them, else the run is
refused (USAGE): a task the model trained on is never reported as zero-shot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.bundle.training import parse_record, run_block
from kit.errors import ExitCode, KitError
from kit.runfolder import TRAINING


@dataclass(frozen=True)
class TrainingUse:
    """run.json's ``model.training`` (None: no record) and the training datasets to declare
    in the model's mteb metadata (None: unknown)."""

    block: dict[str, Any] | None
    training_datasets: list[str] | None


def training_for_run(folder: Path | None, declared: Sequence[str]) -> TrainingUse:
    """The record in ``folder`` (if any) checked against the ``declared`` training datasets."""
    path = Path(folder) / TRAINING if folder is not None else None
    if path is None or not path.is_file():
        return TrainingUse(None, list(declared) or None)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise KitError(f"{path} is unreadable: {e.strerror or e}", ExitCode.NOT_FOUND) from None
    record = parse_record(data, str(path))
    trained = record_tasks(record)
    if not declared:
        return TrainingUse(run_block(record), sorted(trained))
    named = {_task(n).metadata.name for n in declared}
    missing = sorted(set(trained) - named)
    if missing:
        raise KitError(
            f"{path} says the model trained on {', '.join(missing)}, but the declared training "
            f"datasets ({', '.join(sorted(named))}) do not name "
            f"{'it' if len(missing) == 1 else 'them'}: declare every task trained on",
            ExitCode.USAGE,
        )
    return TrainingUse(run_block(record), sorted(named))


def record_tasks(record: dict[str, Any]) -> dict[str, str]:
    """mteb task -> the dataset of the record that makes it a training task."""
    out: dict[str, str] = {}
    by_path: dict[str, list[str]] | None = None
    for entry in record["data"]:
        dataset = entry["dataset"]
        name = entry.get("mteb_task")
        if name:
            meta = _task(name).metadata
            if meta.dataset.get("path") != dataset:
                raise KitError(
                    f"{TRAINING}: mteb's {meta.name} is dataset {meta.dataset.get('path')}, "
                    f"the record names {dataset}",
                    ExitCode.USAGE,
                )
            out[meta.name] = dataset
            continue
        if by_path is None:
            by_path = _tasks_by_dataset()
        for task in by_path.get(dataset, []):
            out[task] = dataset
    return out


def _task(name: str) -> Any:
    import mteb

    try:
        return mteb.get_task(name)
    except KeyError as e:  # mteb's message names its closest match
        why = str(e.args[0]) if e.args else name
        raise KitError(f"unknown training dataset: {why}", ExitCode.USAGE) from None


def _tasks_by_dataset() -> dict[str, list[str]]:
    """Every mteb task (superseded, private and beta ones too) by its dataset's path."""
    import warnings

    import mteb

    out: dict[str, list[str]] = {}
    with warnings.catch_warnings():  # mteb warns for each beta task it lists
        warnings.simplefilter("ignore")
        tasks = mteb.get_tasks(exclude_superseded=False, exclude_private=False, exclude_beta=False)
    for task in tasks:
        path = task.metadata.dataset.get("path")
        if isinstance(path, str):
            out.setdefault(path, []).append(task.metadata.name)
    return out
