"""Per-sample predictions on the long tasks, and the sample-level compare of two batch sizes.

Banking77Classification (10 experiments of classifiers on the embeddings) and SciFact
(retrieval, mteb's top 1000 per query, and cut to the top 100) through `repro-kit evaluate`
and `verify --recompute`: every value mteb writes comes back from the predictions and the
dataset alone, or is named as not recomputable with the reason. Minutes each on 2 cores,
so they live in the system tier; the STS tasks are in tests/e2e/test_predictions.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import run_kit


def _evaluate_and_recompute(hf_home: Path, out: Path, task: str, *extra: str) -> dict:
    proc = run_kit(
        ["evaluate", "--tasks", task, "-o", str(out), "--offline", "-q", *extra],
        hf_home,
        timeout=2400,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    bundle = out.with_suffix(".tar.gz")
    check = run_kit(
        ["verify", str(bundle), "--allow-unsigned", "--recompute", "--json"], hf_home, timeout=900
    )
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-2000:]
    (row,) = json.loads(check.stdout)["recompute"]
    assert row["task"] == task and row["ok"] is True and row["mismatches"] == []
    return row


def _written(run: Path, task: str) -> int:
    def count(v: object) -> int:
        if isinstance(v, dict):
            return sum(count(x) for x in v.values())
        if isinstance(v, list):
            return sum(count(x) for x in v)
        return 1

    raw = next(run.glob(f"results/*/*/{task}.json"))
    skip = {"hf_subset", "languages", "mteb_version"}
    scores = json.loads(raw.read_text())["scores"]
    return sum(
        count(v) for es in scores.values() for e in es for k, v in e.items() if k not in skip
    )


@pytest.mark.slow
def test_banking77_recomputes_every_written_value(hf_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "b77"
    row = _evaluate_and_recompute(hf_home, out, "Banking77Classification")
    assert row["compared"] == _written(out, "Banking77Classification") == 100
    assert row["not_recomputable"] == {}


@pytest.mark.slow
def test_scifact_recomputes_at_top_1000_and_says_what_top_100_cannot(
    hf_home: Path, tmp_path: Path
) -> None:
    out = tmp_path / "sf"
    row = _evaluate_and_recompute(hf_home, out, "SciFact")
    assert row["compared"] == _written(out, "SciFact") == 149 and row["not_recomputable"] == {}
    cut = tmp_path / "sf100"
    row = _evaluate_and_recompute(hf_home, cut, "SciFact", "--predictions-top-k", "100")
    assert sorted(row["not_recomputable"]) == ["@1000", "_std"]
    assert 0 < row["compared"] < 149
    block = json.loads((cut / "run.json").read_text())["tasks"][0]["predictions"]
    assert block["top_k"] == 100 and block["bytes"] < 1_000_000


def test_compare_batch_32_and_8_reports_the_changed_samples(
    sts_run: Path, hf_home: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bs8"
    proc = run_kit(
        ["evaluate", "--tasks", "STSBenchmark", "-o", str(out), "--offline", "-q", "--no-bundle",
         "--batch-size", "8"],
        hf_home,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    cmp = run_kit(["compare", str(sts_run), str(out), "--json"], hf_home)
    assert cmp.returncode == 0, cmp.stderr
    (row,) = json.loads(cmp.stdout)["samples"]
    assert (row["task"], row["split"], row["subset"], row["samples"]) == (
        "STSBenchmark",
        "test",
        "default",
        1379,
    )
    assert 0 <= row["changed"] <= 1379 and row["largest_change"] < 1e-4
    assert f"{row['changed']} of 1379 samples changed" in row["summary"]
    text = run_kit(["compare", str(sts_run), str(out)], hf_home)
    assert "samples changed" in text.stdout and "STSBenchmark" in text.stdout
