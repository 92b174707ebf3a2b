"""Shard assignment (LPT) and shard specs from the CLI and the environment (pure; mteb's task
costs and the CLI are tests/e2e/test_shard.py)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kit.errors import ExitCode, KitError
from kit.evaluate.shard.plan import (
    ShardSpec,
    assign,
    from_environment,
    parse_spec,
    plan,
    resolve_spec,
)

names = st.text(alphabet="abcdefgh", min_size=1, max_size=4)
cost_maps = st.dictionaries(names, st.integers(min_value=1, max_value=1000), min_size=1, max_size=9)


def _loads(bins: list[list[str]], costs: dict[str, int]) -> list[int]:
    return [sum(costs[t] for t in b) for b in bins]


@given(cost_maps, st.integers(min_value=1, max_value=6))
def test_every_task_in_exactly_one_shard(costs: dict[str, int], n: int) -> None:
    bins = assign(costs, n)
    assert len(bins) == n
    flat = [t for b in bins for t in b]
    assert sorted(flat) == sorted(costs)
    if n <= len(costs):  # positive costs: every shard gets work
        assert all(bins)


@given(cost_maps, st.integers(min_value=1, max_value=6), st.randoms(use_true_random=False))
def test_deterministic_and_independent_of_input_order(costs, n, rnd) -> None:
    items = list(costs.items())
    rnd.shuffle(items)
    assert assign(dict(items), n) == assign(costs, n) == assign(dict(costs), n)


@given(cost_maps, st.integers(min_value=1, max_value=6))
def test_loads_differ_by_at_most_the_largest_task(costs, n) -> None:
    loads = _loads(assign(costs, n), costs)
    assert max(loads) - min(loads) <= max(costs.values())
    assert max(loads) <= sum(costs.values()) / n + max(costs.values())


def _optimum(costs: list[int], n: int) -> int:
    best = sum(costs)
    for labels in itertools.product(range(n), repeat=len(costs)):
        loads = [0] * n
        for c, b in zip(costs, labels, strict=True):
            loads[b] += c
        best = min(best, max(loads))
    return best


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(names, st.integers(min_value=1, max_value=50), min_size=1, max_size=7),
    st.integers(min_value=2, max_value=3),
)
def test_makespan_within_grahams_lpt_bound(costs, n) -> None:
    """LPT's makespan is at most (4/3 - 1/(3n)) times the optimum (brute-forced here)."""
    makespan = max(_loads(assign(costs, n), costs))
    assert makespan * 3 * n <= (4 * n - 1) * _optimum(list(costs.values()), n)


def test_lpt_order_and_ties() -> None:
    assert assign({"b": 5, "a": 5, "c": 3, "d": 2}, 2) == [["a", "c"], ["b", "d"]]
    assert assign({"x": 1, "y": 1, "z": 1}, 3) == [["x"], ["y"], ["z"]]
    with pytest.raises(ValueError):
        assign({"a": 0}, 1)
    with pytest.raises(ValueError):
        assign({"a": 1}, 0)


@pytest.mark.parametrize(
    ("text", "index", "count"), [("0/3", 0, 3), ("2/3", 2, 3), (" 1 / 4 ", 1, 4), ("0/1", 0, 1)]
)
def test_parse_spec(text: str, index: int, count: int) -> None:
    spec = parse_spec(text)
    assert (spec.index, spec.count, spec.spec) == (index, count, f"{index}/{count}")


@pytest.mark.parametrize("text", ["3/3", "a/b", "0/0", "-1/3", "1", "1/2/3", "", "4/3"])
def test_bad_specs_are_usage_errors(text: str) -> None:
    with pytest.raises(KitError) as e:
        parse_spec(text)
    assert e.value.code == ExitCode.USAGE and "\n" not in e.value.message


def test_kubernetes_indexed_job() -> None:
    spec = from_environment({"JOB_COMPLETION_INDEX": "2"}, 4)
    assert (spec.index, spec.count, spec.source) == (2, 4, "JOB_COMPLETION_INDEX")
    spec = from_environment({"JOB_COMPLETION_INDEX": "1", "JOB_COMPLETIONS": "3"})
    assert (spec.index, spec.count) == (1, 3)
    with pytest.raises(KitError, match="shard count is not"):
        from_environment({"JOB_COMPLETION_INDEX": "1"})
    with pytest.raises(KitError, match="0-based"):
        from_environment({"JOB_COMPLETION_INDEX": "4"}, 4)


def test_slurm_array_including_arrays_from_one() -> None:
    env = {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4"}
    assert from_environment(env).spec == "3/4"
    env = {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "3"}
    assert from_environment(env).spec == "0/3"
    env.update(SLURM_ARRAY_TASK_ID="3")
    assert from_environment(env).spec == "2/3"
    stepped = {
        "SLURM_ARRAY_TASK_ID": "4",
        "SLURM_ARRAY_TASK_MIN": "0",
        "SLURM_ARRAY_TASK_STEP": "2",
        "SLURM_ARRAY_TASK_COUNT": "3",
    }
    assert from_environment(stepped).spec == "2/3"
    with pytest.raises(KitError, match="grid"):
        from_environment({**stepped, "SLURM_ARRAY_TASK_ID": "3"})
    with pytest.raises(KitError, match="differs"):
        from_environment({"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "3"}, 4)
    empty_forwarded = {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2"}
    empty_forwarded.update(SLURM_ARRAY_TASK_MIN="", SLURM_ARRAY_TASK_STEP="")
    assert from_environment(empty_forwarded).spec == "1/2"


def test_auto_needs_an_environment_and_plain_runs_never_shard() -> None:
    with pytest.raises(KitError, match="neither"):
        resolve_spec("auto", None, {})
    both = {"JOB_COMPLETION_INDEX": "0", "SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "2"}
    with pytest.raises(KitError, match="both"):
        resolve_spec("auto", 2, both)
    assert resolve_spec(None, None, both) is None  # no --shard: the environment is ignored
    assert resolve_spec("1/2", None, both) == ShardSpec(1, 2)
    with pytest.raises(KitError, match="--shard-count goes with --shard auto"):
        resolve_spec("1/2", 2, {})
    with pytest.raises(KitError, match="--shard-count goes with --shard auto"):
        resolve_spec(None, 2, {})


def test_plan_records_the_full_list_and_keeps_the_given_order() -> None:
    costs = {t: {"cost": c, "basis": "x"} for t, c in {"a": 1, "b": 9, "c": 5, "d": 4}.items()}
    p = plan(["d", "c", "b", "a"], costs, ShardSpec(1, 2))
    assert p["assignment"] == [["b", "a"], ["c", "d"]]  # a: tie 9/9 goes to shard 0
    assert p["tasks"] == ["d", "c"] and p["tasks_all"] == ["d", "c", "b", "a"]
    assert p["loads"] == [10, 9] and p["spec"] == "1/2"
    with pytest.raises(KitError, match="at most 4 shards"):
        plan(["d", "c", "b", "a"], costs, ShardSpec(0, 5))
    with pytest.raises(KitError, match="twice"):
        plan(["a", "a"], costs, ShardSpec(0, 1))
