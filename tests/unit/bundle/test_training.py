"""The training record's format (kit/bundle/training.py): strict, canonical, bound to the digest."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kit.bundle.manifest import manifest_of
from kit.bundle.training import (
    binding_problems,
    canonical,
    describe,
    named_tasks,
    parse_record,
    run_block,
    summary,
)
from kit.errors import ExitCode, KitError
from kit.fsio import sha256_bytes
from kit.runfolder import TRAINING, ModelFile, digest_of


def record() -> dict[str, Any]:
    return {
        "format": "repro-kit/training",
        "format_version": 1,
        "seed": 42,
        "base_model": "sentence-transformers/all-MiniLM-L6-v2",
        "loss_function": "CoSENTLoss",
        "libraries": {"torch": "2.13.0+cpu", "python": "3.11.7"},
        "data": [
            {
                "dataset": "mteb/stsbenchmark-sts",
                "revision": "b0fddb56ed78048fa8b90373c8a3cfc37b684831",
                "split": "train",
                "rows": 5749,
                "sha256": "ab" * 32,
                "mteb_task": "STSBenchmark",
            },
            {
                "dataset": "alice/pairs",
                "revision": None,
                "split": "train",
                "rows": 10,
                "sha256": "cd" * 32,
            },
        ],
        "steps": 120,
        "batch_size": 16,
        "loss": [{"step": 10, "loss": 6.578788757324219}, {"step": 120, "loss": 4.1383}],
        "code": {"commit": "1" * 40, "dirty": False},
    }


def run_with(rec: dict[str, Any] | None, file_bytes: bytes | None) -> dict[str, Any]:
    """A run.json whose model folder held ``file_bytes`` as training.json (None: no file)."""
    files = [ModelFile("model.safetensors", 3, "ee" * 32)]
    if file_bytes is not None:
        files.append(ModelFile(TRAINING, len(file_bytes), sha256_bytes(file_bytes)))
    model: dict[str, Any] = {
        "digest": digest_of(files),
        "files": [f.to_json() for f in files],
    }
    if rec is not None:
        model["training"] = run_block(rec)
    return {"model_source": "local", "model": model}


def test_the_writers_bytes_parse_back_to_the_record() -> None:
    data = canonical(record())
    assert parse_record(data, "x/training.json") == record()
    assert data.endswith(b"}\n") and b'  "seed": 42' in data  # sorted keys, 2-space indent


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda r: r.pop("seed"), "'seed' is a required property"),
        (lambda r: r.update(format_version=2), "format_version"),
        (lambda r: r["data"][0].update(sha256="xyz"), "does not match"),
        (lambda r: r.update(data=[]), "should be non-empty"),
        (lambda r: r["loss"].append({"step": -1, "loss": 1.0}), "less than the minimum"),
    ],
)
def test_a_record_off_its_schema_is_refused(mutate, words: str) -> None:
    rec = record()
    mutate(rec)
    with pytest.raises(KitError) as e:
        parse_record(canonical(rec), "ft/training.json")
    assert e.value.code == ExitCode.SCHEMA
    assert e.value.message.startswith("ft/training.json: ") and words in e.value.message


def test_bytes_not_in_canonical_form_or_not_strict_json_are_refused() -> None:
    import json

    loose = json.dumps(record()).encode()  # the same record, other bytes: another sha256
    with pytest.raises(KitError, match="not in canonical form") as e:
        parse_record(loose, "training.json")
    assert e.value.code == ExitCode.SCHEMA
    with pytest.raises(KitError, match="duplicate key") as e:
        parse_record(b'{"seed": 1, "seed": 2}', "training.json")
    assert e.value.code == ExitCode.SCHEMA


def test_named_tasks_and_the_manifest_summary() -> None:
    rec = record()
    assert named_tasks(rec) == ["STSBenchmark"]
    block = run_block(rec)
    assert block["sha256"] == sha256_bytes(canonical(rec))
    short = summary(block)
    assert short is not None
    assert (short["seed"], short["steps"], short["batch_size"]) == (42, 120, 16)
    assert (short["first_loss"], short["last_loss"]) == (6.578788757324219, 4.1383)
    assert short["data"][1]["mteb_task"] is None and short["code_commit"] == "1" * 40
    line = describe(block)
    assert line.startswith("seed 42, 120 steps x batch 16 on mteb/stsbenchmark-sts@b0fddb5 train")
    assert "5,749 rows" in line and "loss 6.579 -> 4.138" in line and "code 111111111111" in line
    assert describe(short) == line
    assert summary({"record": {"seed": "x"}}) is None  # an invalid record has no summary


def test_a_record_bound_to_the_digested_file_passes() -> None:
    rec = record()
    assert binding_problems(run_with(rec, canonical(rec))) == []
    assert binding_problems(run_with(None, None)) == []


def test_an_edited_record_no_file_or_an_unrecorded_file_is_found() -> None:
    rec = record()
    edited = copy.deepcopy(rec)
    edited["steps"] = 1200  # run.json says more training than the file the digest covers
    run = run_with(rec, canonical(rec))
    run["model"]["training"]["record"] = edited
    assert "is not the training.json the model digest covers" in binding_problems(run)[0]
    assert "hold no training.json" in binding_problems(run_with(rec, None))[0]
    assert "does not record it" in binding_problems(run_with(None, canonical(rec)))[0]
    run = run_with(rec, canonical(rec))
    run["model"]["training"]["record"] = {"seed": "x"}
    assert "does not match the training.json schema" in binding_problems(run)[0]


def test_the_manifest_carries_the_summary_only_for_a_valid_record() -> None:
    rec = record()
    base = {
        "resolved": {"model": "a/b", "revision": None, "tasks": [], "benchmark": None},
        "encode": {},
        "tasks": [],
        "status": "complete",
    }
    env = {"hardware": {}, "os": {}, "python": {}}
    good = manifest_of({**base, "model": {"training": run_block(rec)}}, env, {}, {})
    assert good["training"]["sha256"] == sha256_bytes(canonical(rec))
    bad = manifest_of({**base, "model": {"training": {"record": {}}}}, env, {}, {})
    assert "training" not in bad
