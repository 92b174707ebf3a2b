"""`compare`'s differences in short (kit/verify/compare.py): one line a side, whole in --json."""

from __future__ import annotations

import io
import json
from typing import Any

from rich.console import Console

from kit.cli.render import print_compare
from kit.verify.compare import compare, file_changes, one_line

LOADER = {
    "source": "model folder",
    "function": "sentence_transformers.SentenceTransformer",
    "kwargs": {"model_name_or_path": "/tmp/ft", "local_files_only": True},
    "wrapper": "mteb.models.SentenceTransformerEncoderWrapper",
}


def record() -> dict[str, Any]:
    """A training record, valid under its schema."""
    return {
        "format": "repro-kit/training",
        "format_version": 1,
        "seed": 42,
        "libraries": {},
        "data": [{"dataset": "mteb/stsbenchmark-sts", "revision": "b0fddb5", "split": "train",
                  "rows": 5749, "sha256": "ab" * 32, "mteb_task": "STSBenchmark"}],
        "steps": 120,
        "batch_size": 16,
        "loss": [{"step": 10, "loss": 6.5}],
        "code": None,
    }  # fmt: skip


def side(files: dict[str, str], training: Any, meta: Any, score: float) -> dict[str, Any]:
    model = {"files_sha256": files, "embedding": {"loader": LOADER if training else {}}}
    if training is not None:
        model["training"] = training
    return {
        "path": "x.tar.gz",
        "run": {"model": model, "tasks": [], "encode": {}},
        "env": {"packages": {}},
        "tasks": {"STSBenchmark": {"main_score": score}, "STS13": {"main_score": score}},
        "predictions": {},
        "model_meta": meta,
    }


def test_one_line_never_prints_a_raw_dict() -> None:
    assert one_line(LOADER) == (
        "sentence_transformers.SentenceTransformer(local_files_only=True, "
        "model_name_or_path=/tmp/ft) via mteb.models.SentenceTransformerEncoderWrapper"
    )
    assert one_line({"b": 2, "a": {"c": [1, 2]}}) == "a=c=1, 2, b=2"
    assert one_line(list(range(9))) == "0, 1, 2, 3, 4 and 4 more"
    assert one_line(None) == "-" and len(one_line("x" * 500)) == 160


def test_file_changes_are_a_short_list_and_counts() -> None:
    a = {f"f{i}.json": "1" for i in range(10)} | {"vocab.txt": "v"}
    b = {f"f{i}.json": "2" for i in range(10)} | {"training.json": "t"}
    short = file_changes(a, b)
    assert short["what"] == (
        "model file hashes: 10 differ (f0.json, f1.json, f2.json and 7 more); "
        "1 only in A (vocab.txt); 1 only in B (training.json)"
    )
    assert (short["a_text"], short["b_text"]) == ("11 files", "11 files")


def test_compare_lists_the_training_record_and_zero_shot_per_task() -> None:
    from kit.bundle.training import run_block

    base_meta = {"training_datasets": ["MSMARCO"], "adapted_from": None}
    ft_meta = {"training_datasets": ["STSBenchmark"], "adapted_from": None}
    result = compare(
        side({"model.safetensors": "1", "vocab.txt": "v"}, None, base_meta, 0.82),
        side({"model.safetensors": "2", "training.json": "t"}, run_block(record()), ft_meta, 0.84),
    )
    by_what = {d["what"].split(":")[0]: d for d in result["differences"]}
    trained = by_what["training record (training.json)"]
    assert trained["a_text"] == "none" and trained["b_text"].startswith("seed 42, 120 steps")
    assert trained["b"]["record"] == record()  # --json keeps everything
    assert by_what["model file hashes"]["a"] == {"model.safetensors": "1", "vocab.txt": "v"}
    rows = {r["task"]: r for r in result["tasks"]}
    assert (rows["STSBenchmark"]["zero_shot_a"], rows["STSBenchmark"]["zero_shot_b"]) == (
        True,
        False,
    )
    assert rows["STS13"]["zero_shot_b"] is True
    assert result["zero_shot"]["b"]["percentage"] == 50
    buf = io.StringIO()
    print_compare(Console(file=buf, width=250, highlight=False), json.loads(json.dumps(result)))
    out = buf.getvalue()
    assert "{'" not in out and "': '" not in out  # no Python dict reaches the terminal
    assert "yes / no" in out and "zero-shot B: 50 %" in out
    assert by_what["model file hashes"]["what"].endswith(
        "1 differ (model.safetensors); 1 only in A (vocab.txt); 1 only in B (training.json)"
    )
    assert "2 files" in out and "1 differ" in out
