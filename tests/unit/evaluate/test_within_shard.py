"""Within-task sharding without mteb: batches, owners, keys, the store, the plan of splits."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kit.bundle.within import BATCHES, coverage, parse_index, plan_problems
from kit.errors import ExitCode, KitError
from kit.evaluate.shard.batches import (
    CallPlan,
    batch_key,
    bounds,
    call_key,
    settings_digest,
    texts_digest,
)
from kit.evaluate.shard.plan import ShardSpec, plan
from kit.evaluate.shard.split import balanced_plan, split_loads, within_plan
from kit.evaluate.shard.store import PACK, MergedStore, ShardStore, find_packs, shard_folder

SETTINGS = {"model_digest": "abc", "batch_size": 4, "device_kind": "cpu"}


@settings(deadline=None)  # a shared host: timing is not what is tested
@given(st.integers(0, 500), st.integers(1, 64), st.integers(0, 40), st.integers(1, 9))
def test_every_batch_of_a_call_has_exactly_one_shard(n: int, bs: int, first: int, count: int):
    plans = [CallPlan(n, bs, first, count, i) for i in range(count)]
    held = {i: p.mine() for i, p in enumerate(plans)}
    missing, doubled = coverage(held, len(bounds(n, bs)))
    assert missing == [] and doubled == {}
    sizes = [len(m) for m in held.values()]
    assert max(sizes, default=0) - min(sizes, default=0) <= 1


def test_bounds_cover_the_order_in_batch_size_runs():
    assert bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert bounds(0, 4) == []
    with pytest.raises(ValueError):
        bounds(3, 0)


def test_coverage_names_missing_and_doubled_batches():
    assert coverage({0: [0, 2], 1: [2]}, 4) == ([1, 3], {2: [0, 1]})


def test_keys_change_with_settings_route_and_every_text():
    s = settings_digest(SETTINGS)
    assert s != settings_digest({**SETTINGS, "batch_size": 8})
    k = batch_key(s, {"prompt": None}, ["a", "b"])
    assert k != batch_key(s, {"prompt": "query: "}, ["a", "b"])
    assert k != batch_key(s, {"prompt": None}, ["b", "a"])
    assert k != batch_key(s, {"prompt": None}, ["ab"])  # length-prefixed: no join collision
    assert texts_digest(["a", "bc"]) != texts_digest(["ab", "c"])
    call = {"task": "T", "prompt_type": None, "options": {"batch_size": 4}}
    assert call_key(s, call, "x") != call_key(s, {**call, "task": "U"}, "x")


def test_split_loads_share_a_task_to_the_text():
    for cost, n in ((1000, 3), (31, 4), (32 * 7, 7), (1, 5)):
        loads = split_loads(cost, n, 32)
        assert sum(loads) == cost and min(loads) >= 0
        assert max(loads) - min(loads) <= 32


def test_splitting_the_dominant_task_beats_task_level_sharding():
    costs = {"huge": 5600, **{f"t{i}": 100 + i for i in range(40)}}
    for n in (4, 8, 16):
        whole = sum(costs.values()) / max(5600, sum(costs.values()) / n)
        best = balanced_plan(costs, n, batch_size=1)
        assert "huge" in best["split"]
        assert best["speedup"] >= 0.9 * n > whole
        assert sorted(t for b in best["assignment"] for t in b if t not in best["split"]) == sorted(
            t for t in costs if t not in best["split"]
        )
    assert within_plan(costs, 1)["split"] == []


def test_the_shard_record_splits_the_dominant_task_and_assigns_the_rest():
    costs = {t: {"cost": c, "basis": "test"} for t, c in (("big", 9000), ("a", 500), ("b", 400))}
    records = [plan(["a", "big", "b"], costs, ShardSpec(i, 3), within=True) for i in range(3)]
    assert all(r["mode"] == "within-tasks" and r["split"] == ["big"] for r in records)
    whole = sorted(t for r in records for t in r["assignment"][r["index"]])
    assert whole == ["a", "b"]  # each whole task once, in some shard
    assert all("big" in r["tasks"] for r in records)
    one = plan(["big"], {"big": costs["big"]}, ShardSpec(1, 3), within=True)
    assert one["tasks"] == ["big"] and one["assignment"] == [[], [], []]
    with pytest.raises(KitError) as e:  # without --within-tasks: too few tasks for 3 shards
        plan(["big"], {"big": costs["big"]}, ShardSpec(1, 3))
    assert e.value.code == ExitCode.USAGE and "--within-tasks" in str(e.value)


def _write(store: Path, index: int, count: int, settings: dict, calls: list[dict]) -> ShardStore:
    s = ShardStore(store, settings, index, count)
    for call in calls:
        keys = call["batch_keys"]
        mine = [b for b in range(len(keys)) if (call["first"] + b) % count == index]
        for b in mine:
            s.put_batch(keys[b], call["rows"][b])
        rec = {k: v for k, v in call.items() if k not in ("rows", "order", "truth")}
        s.put_call({**rec, "mine": mine}, call["order"].astype("<i4").tobytes())
    s.close()
    return s


def _call(digest: str, n: int = 10, bs: int = 4) -> dict:
    rng = np.random.default_rng(n)
    order = rng.permutation(n)
    truth = rng.standard_normal((n, 3)).astype(np.float32)
    spans = bounds(n, bs)
    raw = order.astype("<i4").tobytes()
    return {
        "call": hashlib.sha256(b"call").hexdigest(),
        "task": "T",
        "split": "test",
        "subset": "default",
        "seq": 0,
        "prompt_type": None,
        "n": n,
        "batch_size": bs,
        "first": 0,
        "batch_keys": [batch_key(digest, {}, [str(i) for i in order[a:b]]) for a, b in spans],
        "rows": [truth[order[a:b]] for a, b in spans],
        "order": order,
        "truth": truth,
        "texts_sha256": "t",
        "order_sha256": hashlib.sha256(raw).hexdigest(),
    }


def _merged(store: Path, stores: list[Path] | None = None) -> MergedStore:
    indexes = []
    for folder in sorted(p for p in store.iterdir() if p.name.startswith("shard-")):
        files = {
            p.relative_to(folder).as_posix(): p.read_bytes()
            for p in folder.rglob("*")
            if p.is_file()
        }
        indexes.append(parse_index({k: v for k, v in files.items() if k != PACK}, folder.name))
    return MergedStore(indexes, find_packs(stores or [store], indexes[0].count))


def _recompute(i: int, tasks: str) -> str:
    return f"repro-kit evaluate M --tasks {tasks} --shard {i}/3 --within-tasks --store S"


def test_store_round_trip_gives_the_rows_back_in_input_order(tmp_path: Path):
    call = _call(settings_digest(SETTINGS))
    for i in range(3):
        _write(tmp_path, i, 3, SETTINGS, [call])
    merged = _merged(tmp_path)
    assert plan_problems(merged.indexes, _recompute) == []
    out = merged.assemble(call["call"])
    assert out.tobytes() == call["truth"].tobytes()  # bit for bit
    assert merged.read_bytes == call["truth"].nbytes


def test_a_missing_shard_is_named_with_its_command(tmp_path: Path):
    call = _call(settings_digest(SETTINGS))
    for i in (0, 2):
        _write(tmp_path, i, 3, SETTINGS, [call])
    problems = plan_problems(_merged(tmp_path).indexes, _recompute)
    assert problems[0].startswith("shard 1/3 is missing (its batches of T); recompute it: ")
    assert problems[0].endswith(_recompute(1, "T"))


def test_a_doubled_batch_is_named(tmp_path: Path):
    call = _call(settings_digest(SETTINGS))
    for i in range(3):
        _write(tmp_path, i, 3, SETTINGS, [call])
    merged = _merged(tmp_path)
    merged.indexes[1].calls[call["call"]]["mine"] = [0, 1]  # shard 1 claims shard 0's batch 0
    problems = plan_problems(merged.indexes, _recompute)
    assert problems == ["T test/default call 0: batch 0 computed by shards [0, 1]; keep one"]


def test_shards_with_other_settings_are_refused(tmp_path: Path):
    call = _call(settings_digest(SETTINGS))
    _write(tmp_path / "a", 0, 2, SETTINGS, [call])
    _write(tmp_path / "a", 1, 2, {**SETTINGS, "batch_size": 8}, [call])
    problems = plan_problems(_merged(tmp_path / "a").indexes, _recompute)
    assert "batch_size: 4 vs 8" in problems[0] and problems[0].startswith("shard 1 ")


def test_an_altered_batch_is_refused_on_read(tmp_path: Path):
    call = _call(settings_digest(SETTINGS))
    _write(tmp_path, 0, 1, SETTINGS, [call])
    folder = shard_folder(tmp_path, 0, 1)
    data = bytearray((folder / PACK).read_bytes())
    data[5] ^= 1
    (folder / PACK).write_bytes(bytes(data))
    with pytest.raises(KitError) as e:
        _merged(tmp_path).assemble(call["call"])
    assert e.value.code == ExitCode.INTEGRITY


def test_a_store_made_with_other_settings_is_not_reused(tmp_path: Path):
    ShardStore(tmp_path, SETTINGS, 0, 2).close()
    with pytest.raises(KitError) as e:
        ShardStore(tmp_path, {**SETTINGS, "batch_size": 8}, 0, 2)
    assert e.value.code == ExitCode.SHARDS and "batch_size: 4 vs 8" in str(e.value)


def test_identical_batches_are_stored_once_and_a_cut_line_is_dropped(tmp_path: Path):
    s = ShardStore(tmp_path, SETTINGS, 0, 1)
    rows = np.ones((2, 3), dtype=np.float32)
    s.put_batch("k", rows)
    s.put_batch("k", rows)
    s.close()
    folder = shard_folder(tmp_path, 0, 1)
    lines = (folder / BATCHES).read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["rows"] == 2
    assert (folder / PACK).stat().st_size == rows.nbytes
    with open(folder / BATCHES, "a") as f:
        f.write('{"key": "cut')  # a kill in the middle of a line
    again = ShardStore(tmp_path, SETTINGS, 0, 1)
    assert again.keys == {"k"}
    again.close()
