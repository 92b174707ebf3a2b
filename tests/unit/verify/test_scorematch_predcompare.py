"""Recomputed scores against mteb's raw file (to its rounding), and sample-level comparison."""

from __future__ import annotations

import json
import math

import pytest

from kit.bundle.predictions import PredictionsError, gzip_member
from kit.errors import ExitCode
from kit.verify.predcompare import SidePredictions, compare_payloads, compare_tasks
from kit.verify.recompute import SubsetScores
from kit.verify.scorematch import compare_with_raw

RAW = {
    "test": [
        {
            "hf_subset": "default",
            "languages": ["eng-Latn"],
            "main_score": 0.830325,
            "cosine_spearman": 0.830325,
            "ap": math.nan,
            "scores_per_experiment": [{"accuracy": 0.5}, {"accuracy": 0.25}],
        }
    ]
}


def scores(**change: object) -> list[SubsetScores]:
    base = {
        "main_score": 0.83032549,
        "cosine_spearman": 0.8303246,
        "ap": math.nan,
        "scores_per_experiment": [{"accuracy": 0.5}, {"accuracy": 0.25}],
        "extra_not_in_raw": 1.0,
    }
    return [SubsetScores("test", "default", {**base, **change})]


def test_equal_within_mtebs_rounding_and_every_value_counted():
    mismatches, compared = compare_with_raw("T", scores(), RAW)
    assert mismatches == [] and compared == 5  # 3 scalars + 2 nested per-experiment values


def test_a_difference_is_one_line_naming_everything():
    mismatches, _ = compare_with_raw("T", scores(main_score=0.8203, ap=0.1), RAW)
    lines = [m.line() for m in mismatches]
    assert "T test/default main_score: raw 0.830325, recomputed 0.8203" in lines
    assert "T test/default ap: raw nan, recomputed 0.1" in lines
    nested = scores(scores_per_experiment=[{"accuracy": 0.5}, {"accuracy": 0.3}])
    (m,) = compare_with_raw("T", nested, RAW)[0]
    assert m.metric == "scores_per_experiment[1].accuracy"


def test_a_metric_not_recomputed_is_a_mismatch_unless_marked():
    rec = scores()
    del rec[0].scores["cosine_spearman"]
    (m,) = compare_with_raw("T", rec, RAW)[0]
    assert (m.metric, m.recomputed) == ("cosine_spearman", None)
    raw = {"test": [{"hf_subset": "default", "ndcg_at_1000": 0.5, "nauc_ndcg_at_10_std": 0.1}]}
    marked = [SubsetScores("test", "default", {}, {"@1000": "top 100", "_std": "top 100"})]
    assert compare_with_raw("T", marked, raw) == ([], 0)


def test_sts_compare_counts_changed_pairs_and_the_largest():
    a = {"cosine_scores": [0.5, 0.6, 0.7]}
    b = {"cosine_scores": [0.5, 0.6000001, 0.69]}
    d = compare_payloads("sts", a, b)
    assert d.samples == 3 and [c[0] for c in d.changed] == [1, 2]
    assert d.max_abs_delta == pytest.approx(0.01)
    assert "2 of 3 samples changed" in d.summary()


def test_retrieval_compare_top10_and_rank_correlation():
    docs = {f"d{i}": 1.0 - i / 100 for i in range(20)}
    swapped = {**docs, "d0": docs["d1"], "d1": docs["d0"]}
    d = compare_payloads("retrieval", {"q1": docs, "q2": docs}, {"q1": swapped, "q2": docs})
    assert d.changed == ["q1"] and 0.99 < d.rank_correlation < 1.0


def _side(kind: str, payload: object) -> SidePredictions:
    doc = {"mteb_model_meta": {"model_name": "m", "revision": None}, "default": {"test": payload}}
    return SidePredictions(kind, None, gzip_member(json.dumps(doc).encode()))


def test_compare_tasks_reads_strictly_and_lists_the_largest_changes():
    lists = ("cosine_scores", "manhattan_distances", "euclidean_distances")
    a = {k: [0.1, 0.2, 0.3] for k in lists}
    b = {**a, "cosine_scores": [0.1, 0.25, 0.9]}
    (row,) = compare_tasks({"STS": _side("sts", a)}, {"STS": _side("sts", b)})
    assert row["changed"] == 2 and row["largest_change"] == pytest.approx(0.6)
    assert row["examples"][0] == {"index": 2, "a": 0.3, "b": 0.9}
    hostile = SidePredictions("sts", None, gzip_member(b'{"mteb_model_meta": NaN}'))
    with pytest.raises(PredictionsError) as e:
        compare_tasks({"STS": hostile}, {"STS": _side("sts", a)})
    assert e.value.code == ExitCode.SCHEMA
    shorter = {k: [0.1, 0.2] for k in lists}
    (row,) = compare_tasks({"STS": _side("sts", a)}, {"STS": _side("sts", shorter)})
    assert row["compared"] is False and "3 and 2 samples" in row["reason"]
