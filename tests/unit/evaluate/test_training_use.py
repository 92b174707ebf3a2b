"""A folder's training.json at evaluate (kit/evaluate/model/training.py): recorded, and checked
against the declared training datasets with mteb's task definitions (mteb imported)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kit.bundle.training import canonical
from kit.errors import ExitCode, KitError
from kit.evaluate.model.training import record_tasks, training_for_run
from kit.fsio import sha256_bytes
from kit.runfolder import TRAINING

STSB = "mteb/stsbenchmark-sts"


def record(*data: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": "repro-kit/training",
        "format_version": 1,
        "seed": 7,
        "libraries": {},
        "data": list(data),
        "steps": 3,
        "batch_size": 2,
        "loss": [],
        "code": None,
    }


def entry(dataset: str, task: str | None = None) -> dict[str, Any]:
    return {"dataset": dataset, "revision": None, "split": "train", "rows": 1,
            "sha256": "0" * 64, "mteb_task": task}  # fmt: skip


def folder(tmp_path: Path, rec: dict[str, Any]) -> Path:
    (tmp_path / TRAINING).write_bytes(canonical(rec))
    return tmp_path


def test_no_record_keeps_what_was_declared(tmp_path: Path) -> None:
    assert training_for_run(tmp_path, ()).training_datasets is None  # unknown
    use = training_for_run(tmp_path, ("STS12",))
    assert use.block is None and use.training_datasets == ["STS12"]
    assert training_for_run(None, ()).block is None


def test_the_records_tasks_are_declared_when_none_are_given(tmp_path: Path) -> None:
    rec = record(entry(STSB, "STSBenchmark"), entry("alice/own-pairs"))
    use = training_for_run(folder(tmp_path, rec), ())
    assert use.training_datasets == ["STSBenchmark"]
    assert use.block is not None and use.block["record"] == rec
    assert use.block["sha256"] == sha256_bytes((tmp_path / TRAINING).read_bytes())
    only_own = training_for_run(folder(tmp_path, record(entry("alice/own-pairs"))), ())
    assert only_own.training_datasets == []  # declared: no mteb task (the parent's still count)


def test_an_unnamed_entry_of_an_mteb_tasks_dataset_counts_as_that_task() -> None:
    assert record_tasks(record(entry(STSB))) == {"STSBenchmark": STSB}


def test_declared_datasets_must_name_every_task_trained_on(tmp_path: Path) -> None:
    where = folder(tmp_path, record(entry(STSB, "STSBenchmark")))
    with pytest.raises(KitError) as e:
        training_for_run(where, ("STS12",))
    assert e.value.code == ExitCode.USAGE
    assert "says the model trained on STSBenchmark" in e.value.message
    assert "(STS12) do not name it" in e.value.message
    more = training_for_run(where, ("STS12", "STSBenchmark"))  # more than trained on: kept
    assert more.training_datasets == ["STS12", "STSBenchmark"]


@pytest.mark.parametrize(
    "bad, words",
    [
        (entry(STSB, "NoSuchTaskAnywhere"), "unknown training dataset"),
        (entry("mteb/sts12-sts", "STSBenchmark"), "mteb's STSBenchmark is dataset " + STSB),
    ],
)
def test_a_record_naming_a_task_wrongly_is_refused(tmp_path: Path, bad, words: str) -> None:
    with pytest.raises(KitError) as e:
        training_for_run(folder(tmp_path, record(bad)), ())
    assert e.value.code == ExitCode.USAGE and words in e.value.message


def test_a_malformed_record_is_a_schema_error(tmp_path: Path) -> None:
    (tmp_path / TRAINING).write_text('{"seed": 1}\n')
    with pytest.raises(KitError) as e:
        training_for_run(tmp_path, ())
    assert e.value.code == ExitCode.SCHEMA and str(tmp_path / TRAINING) in e.value.message
