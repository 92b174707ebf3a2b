"""`repro-kit evaluate --shard`: task costs from mteb's own statistics, and the CLI's checks
(the pure assignment and shard specs are tests/unit/evaluate/test_shard_plan.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import mteb
import pytest

from kit.errors import ExitCode
from kit.evaluate.shard.cost import DEFAULT_COST, estimate, task_costs
from kit.evaluate.shard.plan import assign
from tests.support import REPO


def _loads(bins: list[list[str]], costs: dict[str, int]) -> list[int]:
    return [sum(costs[t] for t in b) for b in bins]


def _stats(name: str) -> dict:
    return mteb.get_task(name).metadata.descriptive_stats


def test_costs_from_mteb_descriptive_statistics() -> None:
    names = ("STSBenchmark", "SciFact", "Banking77Classification")
    costs = task_costs([mteb.get_task(n) for n in names])
    sts, scifact, banking = (_stats(n) for n in names)
    assert costs["STSBenchmark"]["cost"] == 2 * sts["test"]["num_samples"]  # pairs
    assert (
        costs["SciFact"]["cost"]
        == scifact["test"]["num_queries"] + scifact["test"]["num_documents"]
    )
    labels = banking["train"]["label_statistics"]["unique_labels"]
    undersampled = min(banking["train"]["num_samples"], 10 * 8 * labels)
    assert costs["Banking77Classification"]["cost"] == banking["test"]["num_samples"] + undersampled
    assert all("descriptive statistics" in c["basis"] for c in costs.values())


def test_cost_counts_only_the_subsets_that_run() -> None:
    sts17 = next(t for t in mteb.get_benchmark("MTEB(eng, v2)").tasks if t.metadata.name == "STS17")
    stats = sts17.metadata.descriptive_stats["test"]
    cost = task_costs([sts17])["STS17"]["cost"]
    assert sts17.hf_subsets == ["en-en"]
    assert cost == 2 * stats["hf_subset_descriptive_stats"]["en-en"]["num_samples"]
    assert cost < 2 * stats["num_samples"]


def test_missing_statistics_fall_back_with_the_reason() -> None:
    cost, basis = estimate("STS", ["test"], ["default"], None)
    assert cost == DEFAULT_COST and "no descriptive statistics" in basis
    cost, basis = estimate("STS", ["dev"], ["default"], _stats("STSBenchmark"))
    assert cost == DEFAULT_COST and "split 'dev'" in basis


def test_mteb_eng_v2_in_four_shards_is_balanced_within_lpt_bounds() -> None:
    tasks = mteb.get_benchmark("MTEB(eng, v2)").tasks
    costs = {n: c["cost"] for n, c in task_costs(tasks).items()}
    bins = assign(costs, 4)
    loads = _loads(bins, costs)
    assert sorted(t for b in bins for t in b) == sorted(costs)
    biggest = max(costs, key=lambda t: (costs[t], t))
    lower = max(sum(costs.values()) / 4, costs[biggest])  # no assignment can beat this
    # one task (MindSmallReranking) outweighs a quarter of the whole: LPT is then optimal
    assert costs[biggest] >= sum(costs.values()) / 4, (biggest, costs[biggest])
    assert max(loads) == lower and [biggest] in bins
    rest = [load for b, load in zip(bins, loads, strict=True) if b != [biggest]]
    others = max(c for t, c in costs.items() if t != biggest)
    assert max(rest) - min(rest) <= others


def _kit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kit", *args], capture_output=True, text=True, cwd=REPO, timeout=300
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--shard", "3/3"], "0-based"),
        (["--shard", "a/b"], "expected I/N"),
        (["--shard", "0/0"], "at least 1"),
        (["--shard-count", "2"], "--shard-count goes with --shard auto"),
        (["--shard", "auto"], "neither JOB_COMPLETION_INDEX"),
        (["--shard", "auto", "--shard-count", "0"], "0"),
    ],
)
def test_cli_rejects_bad_shards_in_one_line(args: list[str], needle: str, tmp_path) -> None:
    proc = _kit("evaluate", "--tasks", "STSBenchmark", "-o", str(tmp_path / "o"), *args)
    assert proc.returncode == ExitCode.USAGE, proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()


def test_cli_rejects_more_shards_than_tasks(tmp_path) -> None:
    proc = _kit("evaluate", "--tasks", "BIOSSES,STS12", "-o", str(tmp_path / "o"), "--shard", "2/3")
    assert proc.returncode == ExitCode.USAGE, proc.stderr
    assert "only 2 task(s)" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_evaluate_help_documents_the_options() -> None:
    out = _kit("evaluate", "--help").stdout
    assert "--shard I/N|auto" in out and "--shard-count" in out and "0-based" in out
    schema = json.loads(_kit("schema", "run").stdout)
    assert schema["properties"]["shard"]["properties"]["index"]["type"] == ["integer", "null"]
