"""What the run keeps of mteb's predictions file: checked, gzipped, bound, or not kept and why."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from kit.bundle import predictions as bp
from kit.evaluate import predictions as pred


class _Rows(list):
    """A tiny stand-in for a datasets split: columns by name, rows by index."""

    def __init__(self, cols: dict[str, list[Any]]) -> None:
        n = len(next(iter(cols.values())))
        super().__init__(range(n))
        self.cols = cols
        self.column_names = list(cols)

    def __getitem__(self, key: Any) -> Any:
        return self.cols[key] if isinstance(key, str) else super().__getitem__(key)


class AbsTaskSTS:  # the class name is what marks the kind (kit.bundle.binding.task_kind)
    seed = 42
    column_names = ("sentence1", "sentence2")
    min_score, max_score = 0, 5

    def __init__(self) -> None:
        self.metadata = SimpleNamespace(name="T", dataset={"path": "mteb/t", "revision": "r1"})
        self.dataset = {"test": _Rows({"sentence1": ["a", "b"], "sentence2": ["c", "d"],
                                       "score": [1.0, 4.0]})}  # fmt: skip


def _write(folder: Path, doc: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "T_predictions.json").write_text(json.dumps(doc))


def _doc(n: int = 2) -> dict[str, Any]:
    lists = {k: [0.5] * n for k in ("cosine_scores", "manhattan_distances", "euclidean_distances")}
    return {"mteb_model_meta": {"model_name": "m", "revision": None}, "default": {"test": lists}}


def test_kept_gzipped_and_bound(tmp_path: Path):
    _write(tmp_path, _doc())
    got = pred.collect(AbsTaskSTS(), tmp_path, [("test", "default")], None, "r1")
    assert got.member is not None and gzip.decompress(got.member) == json.dumps(_doc()).encode()
    block = got.block
    assert (block["member"], block["kind"], block["missing"]) == (
        "predictions/T.json.gz",
        "sts",
        [],
    )
    (b,) = block["bindings"]
    assert (b["dataset"], b["revision"], b["rows"]) == ("mteb/t", "r1", 2)
    assert b["inputs_sha256"] == bp.rows_sha256([["a", "c"], ["b", "d"]])


def test_missing_subset_and_refused_or_absent_files_are_said(tmp_path: Path):
    _write(tmp_path, _doc())
    got = pred.collect(AbsTaskSTS(), tmp_path, [("test", "default"), ("dev", "default")], None, "r")
    assert got.block["missing"] == [["dev", "default"]]
    assert pred.collect(AbsTaskSTS(), tmp_path / "none", [], None, "r").block["reason"] == (
        "mteb wrote no predictions file"
    )
    bad = _doc()
    bad["default"]["test"]["cosine_scores"] = [0.5]
    _write(tmp_path / "bad", bad)
    refused = pred.collect(AbsTaskSTS(), tmp_path / "bad", [("test", "default")], None, "r")
    assert refused.member is None and "refused by the reader" in refused.block["reason"]


def test_over_the_cap_is_not_read(tmp_path: Path, monkeypatch):
    _write(tmp_path, _doc(1000))
    monkeypatch.setattr(pred, "MAX_JSON_BYTES", 100)
    got = pred.collect(AbsTaskSTS(), tmp_path, [("test", "default")], None, "r1")
    assert got.member is None and "cap" in got.block["reason"]
    assert "--predictions-top-k" in got.block["reason"]
