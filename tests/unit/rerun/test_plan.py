"""Planning a re-run and shaping its result: pure functions on plain data."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kit.errors import ExitCode, KitError
from kit.rerun.execute import RerunResult
from kit.rerun.plan import (
    RerunRequest,
    compare_scores,
    expected_times,
    make_plan,
    plan_lines,
    select_tasks,
    speed_factor,
)


def _run() -> dict[str, Any]:
    return {
        "resolved": {
            "model": "m",
            "revision": "r1",
            "batch_size": 32,
            "precision": "fp32",
            "seed": 42,
            "device": "cpu",
        },
        "tasks": [
            {"name": "A", "duration_seconds": 10.0},
            {"name": "B", "duration_seconds": None},
            {"name": "C"},
        ],
        "model": {"load_seconds": 2.0},
    }


ENV = {"hardware": {"cpu_model": "X"}, "torch": {"num_threads": 8}}
COSTS = {"A": 100.0, "B": 50.0, "C": 0.0}


def test_select_tasks_refuses_unknown_names_and_keeps_bundle_order() -> None:
    assert select_tasks(["A", "B", "C"], ("C", "A"), None, None, COSTS) == ["A", "C"]
    with pytest.raises(KitError) as e:
        select_tasks(["A"], ("Z",), None, None, COSTS)
    assert e.value.code == ExitCode.NOT_FOUND and "not in the bundle: Z" in e.value.message


def test_speed_factor() -> None:
    assert speed_factor(ENV, {"cpu_model": "X", "threads": 8}, "cpu")[0] == 1.0
    assert speed_factor(ENV, {"cpu_model": "Y", "threads": 4}, "cpu") == (
        2.0,
        "torch threads 8 there vs 4 here",
    )
    assert speed_factor(ENV, {"cpu_model": "Y", "threads": 1}, "cpu")[0] == 4.0  # capped
    assert speed_factor(ENV, {}, "cuda") == (1.0, "cuda: not scaled")
    assert speed_factor(ENV, {"cpu_model": "Y"}, "cpu") == (
        1.0,
        "machines not comparable: not scaled",
    )


def test_expected_times_use_durations_then_the_bundle_rate() -> None:
    by_name = {t["name"]: t for t in _run()["tasks"]}
    times = expected_times(by_name, ["A", "B", "C"], COSTS, 2.0)
    assert times[0] == (20.0, "bundle 10.0 s x 2.00")
    assert times[1] == (10.0, "50 texts at the bundle's rate")  # 0.1 s per text, x2
    assert times[2] == (0.0, "unknown")


def test_make_plan_and_its_json() -> None:
    claimed = {"A": 0.5, "B": 0.25, "C": 0.75}
    req = RerunRequest(tasks=("A", "B"))
    plan = make_plan(_run(), ENV, claimed, req, COSTS, {"cpu_model": "Y", "threads": 4})
    data = plan.to_json()
    assert data["mode"] == "host" and data["settings"]["device_kind"] == "cpu"
    assert data["settings"]["allow_revision_mismatch"] is False
    assert [t["task"] for t in data["tasks"]] == ["A", "B"]
    assert data["selection"] == {"requested": ["A", "B"], "sample": None, "seed": None, "from": 2}
    assert data["expected_seconds"] == 4.0 + 20.0 + 10.0  # load 2 s x2, then the tasks
    assert data["image"] is None and data["notes"] == []
    assert json.loads(json.dumps(data)) == data
    lines = plan_lines(plan)
    assert lines[0].startswith("re-run plan: 2 task(s) on host; m@r1, cpu, fp32, batch 32, seed 42")
    assert lines[-1] == "  expected total ~34 s"


def test_a_sample_without_seed_records_the_seed_it_drew() -> None:
    claimed = {"A": 0.5, "B": 0.25, "C": 0.75}
    plan = make_plan(_run(), ENV, claimed, RerunRequest(sample=2), COSTS, {})
    assert isinstance(plan.selection["seed"], int) and len(plan.tasks) == 2
    assert plan_lines(plan)[0].startswith(
        f"re-run plan: drawn 2 of 3 with --seed {plan.selection['seed']}"
    )


def test_compare_scores() -> None:
    rows = compare_scores({"A": 0.5, "B": 0.5, "C": 0.5}, {"A": 0.5, "B": 0.5005}, 0.001)
    assert rows[0] == {
        "task": "A",
        "claimed": 0.5,
        "rerun": 0.5,
        "delta": 0.0,
        "identical": True,
        "ok": True,
    }
    assert rows[1]["ok"] and not rows[1]["identical"]
    assert rows[2]["rerun"] is None and rows[2]["delta"] is None and not rows[2]["ok"]


def test_rerun_result_json_of_a_dry_run_and_of_a_run() -> None:
    dry = RerunResult({"mode": "host"}, "abc", 0.001, True, 0, [], dry_run=True)
    assert dry.to_json() == {
        "plan": {"mode": "host"},
        "bundle_sha256": "abc",
        "tolerance": 0.001,
        "ok": True,
        "exit_code": 0,
        "tasks": [],
        "dry_run": True,
    }
    full = RerunResult(
        {"mode": "host"},
        "abc",
        0.001,
        False,
        int(ExitCode.RERUN_MISMATCH),
        [],
        differences=[],
        embedding_cache={"used": False, "reason": "off"},
        wall_seconds=1.5,
        output=None,
    )
    data = full.to_json()
    assert len(data) == 11 and data["output"] is None and "review_bundle" not in data
    assert data["samples"] is None  # the sample-level compare (no predictions here)
    assert "dry_run" not in data and full.exit_code == ExitCode.RERUN_MISMATCH
    assert json.loads(json.dumps(data)) == data
