"""A within-task shard's index as a bundle holds it: parsing hostile bytes, the shard's claims."""

from __future__ import annotations

import hashlib
import json

import pytest

from kit.bundle.within import (
    BATCHES,
    CALLS,
    FORMAT,
    SETTINGS,
    order_name,
    parse_index,
    recompute_command,
    shard_index_problems,
)

KEYS = [hashlib.sha256(bytes([i])).hexdigest() for i in range(3)]
CALL = hashlib.sha256(b"call").hexdigest()
ORDER = b"".join(i.to_bytes(4, "little") for i in (2, 0, 1, 4, 3))


def _files(index: int = 1, **call: object) -> dict[str, bytes]:
    rec = {
        "call": CALL,
        "task": "T",
        "split": "test",
        "subset": "default",
        "seq": 0,
        "n": 5,
        "batch_size": 2,
        "first": 0,
        "batch_keys": KEYS,
        "mine": [1],
        "texts_sha256": "x",
        "order_sha256": hashlib.sha256(ORDER).hexdigest(),
        **call,
    }
    batch = {"key": KEYS[1], "offset": 0, "rows": 2, "dim": 3, "dtype": "f4", "sha256": "0" * 64}
    head = {
        "format": FORMAT,
        "settings": {"batch_size": 2},
        "digest": "d",
        "index": index,
        "count": 3,
    }
    return {
        SETTINGS: json.dumps(head).encode(),
        CALLS: (json.dumps(rec) + "\n").encode(),
        BATCHES: (json.dumps(batch) + "\n").encode(),
        f"orders/{order_name(CALL)}": ORDER,
    }


def test_an_index_parses_and_matches_its_shard_record():
    index = parse_index(_files())
    assert index.index == 1 and list(index.calls) == [CALL] and list(index.batches) == [KEYS[1]]
    run = {
        "shard": {"index": 1, "count": 3, "spec": "1/3", "split": ["T"]},
        "tasks": [{"name": "T", "status": "mapped"}],
    }
    assert shard_index_problems(run, index) == []
    other = parse_index(_files(mine=[0]))  # claims shard 0's batch
    assert "are not shard 1's" in shard_index_problems(run, other)[0]
    assert (
        "is of T, not a split task"
        in shard_index_problems({**run, "shard": {**run["shard"], "split": []}}, index)[0]
    )


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"n": 7}, "batch keys for 7 texts"),
        ({"batch_keys": ["../x"] * 3}, "not a sha256"),
        ({"mine": [5]}, "mine names a batch"),
        ({"first": "0"}, "first is not a int"),
        ({"order_sha256": "0" * 64}, "differs from its call's order_sha256"),
    ],
)
def test_a_hostile_index_is_refused(change: dict, why: str):
    with pytest.raises(ValueError, match=why):
        parse_index(_files(**change))


def test_an_index_without_settings_or_of_another_format_is_refused():
    files = _files()
    with pytest.raises(ValueError, match=r"no settings\.json"):
        parse_index({k: v for k, v in files.items() if k != SETTINGS})
    files[SETTINGS] = json.dumps({"format": "x", "digest": "d", "index": 0, "count": 1}).encode()
    with pytest.raises(ValueError, match="not a"):
        parse_index(files)


def test_the_recompute_command_repeats_the_plan():
    run = {
        "resolved": {"model": "M", "batch_size": 32, "benchmark": None},
        "shard": {"count": 3, "tasks_all": ["A", "B"], "store": "/s"},
    }
    assert recompute_command(run, 2, "A") == (
        "repro-kit evaluate M --tasks A,B --shard 2/3 --within-tasks --store /s --batch-size 32 "
        "--output OUT-2"
    )
