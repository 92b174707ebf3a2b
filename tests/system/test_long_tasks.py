"""Long tasks, each run once (minutes each on 2 cores, so they live in the system tier, not in
the README's test command; SciFact's run is the session's, shared with the within-task Slurm
test, tests/system/conftest.py): SciFact (retrieval) and
Banking77Classification (classifiers trained on the embeddings of its train split) equal their
published scores, and `verify --recompute` gives back every value mteb writes from the
per-sample predictions and the dataset alone (SciFact also cut to the top 100: what needs more
is named as not recomputable). Also the sample-level compare of two batch sizes. The STS tasks'
published scores and predictions are in tests/e2e (test_evaluate.py, test_predictions.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import reference_score, run_kit
from tests.system.conftest import SciFactRun


def _evaluate(hf_home: Path, out: Path, task: str, *extra: str) -> dict:
    """A real evaluation of ``task`` into ``out`` (bundled beside it); its --json summary."""
    proc = run_kit(
        ["evaluate", "--tasks", task, "-o", str(out), "--offline", "-q", "--json", *extra],
        hf_home,
        timeout=2400,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def _recompute(hf_home: Path, out: Path, task: str) -> dict:
    check = run_kit(
        ["verify", str(out.with_suffix(".tar.gz")), "--allow-unsigned", "--recompute", "--json"],
        hf_home,
        timeout=900,
    )
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-2000:]
    (row,) = json.loads(check.stdout)["recompute"]
    assert row["task"] == task and row["ok"] is True and row["mismatches"] == []
    return row


@pytest.fixture(scope="module")
def scifact(scifact_run: SciFactRun) -> tuple[Path, dict]:
    """The session's SciFact run (predictions kept, mteb's top 1000; shared with the
    within-task Slurm test): its folder and, as `evaluate --json` gives it, its scores."""
    rec = json.loads((scifact_run.run / "run.json").read_text())
    (task,) = rec["tasks"]
    assert task["name"] == "SciFact" and task["status"] == "complete"
    return scifact_run.run, {"tasks": {"SciFact": {"main_score": task["main_score"]}}}


@pytest.fixture(scope="module")
def banking77(hf_home: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One real Banking77Classification run: its folder and summary."""
    out = tmp_path_factory.mktemp("long") / "b77"
    return out, _evaluate(hf_home, out, "Banking77Classification")


@pytest.mark.slow
def test_scifact_matches_published(scifact: tuple[Path, dict]) -> None:
    score = scifact[1]["tasks"]["SciFact"]["main_score"]
    assert abs(score - reference_score("SciFact")) < 1e-5


@pytest.mark.slow
def test_banking77_matches_published(banking77: tuple[Path, dict]) -> None:
    score = banking77[1]["tasks"]["Banking77Classification"]["main_score"]
    assert abs(score - reference_score("Banking77Classification")) < 1e-6


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
def test_banking77_recomputes_every_written_value(
    banking77: tuple[Path, dict], hf_home: Path
) -> None:
    out = banking77[0]
    row = _recompute(hf_home, out, "Banking77Classification")
    assert row["compared"] == _written(out, "Banking77Classification") == 100
    assert row["not_recomputable"] == {}


@pytest.mark.slow
def test_scifact_recomputes_at_top_1000_and_says_what_top_100_cannot(
    scifact: tuple[Path, dict], hf_home: Path, tmp_path: Path
) -> None:
    out = scifact[0]
    row = _recompute(hf_home, out, "SciFact")
    assert row["compared"] == _written(out, "SciFact") == 149 and row["not_recomputable"] == {}
    cut = tmp_path / "sf100"
    _evaluate(hf_home, cut, "SciFact", "--predictions-top-k", "100")
    row = _recompute(hf_home, cut, "SciFact")
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
