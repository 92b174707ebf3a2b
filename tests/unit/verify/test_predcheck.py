"""verify --recompute's per-task flow on a fake task source: bound, recomputed, matched.

The scoring here is a stand-in (the mean of the cosine scores); the real task and mteb's own
scorers are in tests/e2e/test_predictions.py. This checks the flow around them: the binding
check (27), the match against the raw file (26), tasks without predictions, hostile payloads.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from kit.bundle.binding import binding
from kit.bundle.predictions import gzip_member
from kit.bundle.records import BundleRecords
from kit.errors import ExitCode
from kit.verify.checks import VerifyReport
from kit.verify.predcheck import add_recompute, recompute_bundle


class _Rows(list):
    def __init__(self, cols: dict[str, list[Any]]) -> None:
        super().__init__(range(len(next(iter(cols.values())))))
        self.cols = cols
        self.column_names = list(cols)

    def __getitem__(self, key: Any) -> Any:
        return self.cols[key] if isinstance(key, str) else super().__getitem__(key)


class AbsTaskSTS:
    seed = 42
    column_names = ("s1", "s2")
    min_score, max_score = 0, 5

    def __init__(self) -> None:
        self.metadata = SimpleNamespace(name="T", dataset={"path": "mteb/t", "revision": "r1"})
        self.dataset = {"test": _Rows({"s1": ["a", "b"], "s2": ["c", "d"], "score": [1.0, 4.0]})}
        self.unloaded = False

    def _normalize(self, x: float) -> float:
        return x / 5

    def _calculate_scores(self, payload: Any, gold: list[float]) -> dict[str, float]:
        return {"cosine_spearman": sum(payload["cosine_scores"]) / len(gold)}

    def _add_main_score(self, scores: dict[str, Any]) -> None:
        scores["main_score"] = scores["cosine_spearman"]

    def unload_data(self) -> None:
        self.unloaded = True


class Source:
    def __init__(self, revision: str = "r1") -> None:
        self.revision = revision

    def load_task(self, name: str) -> tuple[Any, str | None]:
        return AbsTaskSTS(), self.revision

    def retrieval_scores(self, *a: Any) -> dict[str, Any]:
        raise AssertionError

    def kfold_val_indices(self, *a: Any) -> list[list[int]]:
        raise AssertionError

    def cluster_scores(self, *a: Any) -> dict[str, float]:
        raise AssertionError


LISTS = ("cosine_scores", "manhattan_distances", "euclidean_distances")


def _bundle(cos: list[Any], main: float, **block_change: Any) -> tuple[dict, BundleRecords]:
    doc = {"mteb_model_meta": {"model_name": "m", "revision": None}, "default": {"test": {}}}
    doc["default"]["test"] = {k: cos if k == "cosine_scores" else [0.0] * len(cos) for k in LISTS}
    member = gzip_member(json.dumps(doc).encode())
    bound = binding(AbsTaskSTS(), "sts", "test", "default", "r1").to_json()
    block = {"kind": "sts", "member": "predictions/T.json.gz", "reason": None, "top_k": None,
             "bindings": [bound], "missing": [], **block_change}  # fmt: skip
    raw = {"scores": {"test": [{"hf_subset": "default", "main_score": main,
                                "cosine_spearman": main}]}}  # fmt: skip
    run = {"tasks": [{"name": "T", "status": "complete", "result_file": "r/T.json",
                      "predictions": block}]}  # fmt: skip
    members = {"predictions/T.json.gz": member, "r/T.json": json.dumps(raw).encode()}
    return run, BundleRecords(members, {})


def test_equal_scores_pass_and_the_report_says_so():
    run, records = _bundle([0.2, 0.4], 0.3)
    report = VerifyReport("b")
    (row,) = add_recompute(report, run, records, Source())
    assert row.ok is True and row.compared == 2 and row.code == ExitCode.OK
    assert report.checks[0].name == "recompute T" and report.ok
    assert report.to_json()["recompute"][0]["compared"] == 2


def test_a_raised_score_is_26_in_one_line():
    run, records = _bundle([0.2, 0.4], 0.31)
    (row,) = recompute_bundle(run, records, Source())
    assert row.code == ExitCode.RECOMPUTE_MISMATCH
    assert row.reason.startswith("T test/default main_score: raw 0.31, recomputed 0.3")


def test_another_revision_or_row_count_is_27():
    run, records = _bundle([0.2, 0.4], 0.3)
    (row,) = recompute_bundle(run, records, Source(revision="r0"))
    assert row.code == ExitCode.PREDICTIONS_UNBOUND and "revision 'r1'" in row.reason
    run, records = _bundle([0.2, 0.4, 0.6], 0.3)
    (row,) = recompute_bundle(run, records, Source())
    assert row.code == ExitCode.PREDICTIONS_UNBOUND and "3 predicted rows" in row.reason


def test_without_predictions_is_said_not_failed():
    run, records = _bundle([0.2, 0.4], 0.3, member=None, reason="not saved (--no-predictions)")
    (row,) = recompute_bundle(run, records, Source())
    assert row.ok is None and "--no-predictions" in row.reason


def test_a_hostile_member_is_12():
    run, records = _bundle([0.2, 0.4], 0.3)
    members = dict(records.members)
    members["predictions/T.json.gz"] = gzip_member(b'{"mteb_model_meta": NaN}')
    (row,) = recompute_bundle(run, BundleRecords(members, {}), Source())
    assert row.code == ExitCode.SCHEMA and "NaN" in row.reason
