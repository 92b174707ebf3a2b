"""Merging within-task shards: check the plan, run the reduce, give the split tasks' records.

A within-task shard bundle (``evaluate --shard I/N --within-tasks``) holds, besides the whole
tasks the plan gave it, a ``mapped`` record of every split task and the index of the batches
it stored (``within/``, kit/bundle/within.py). ``reduce_split_tasks`` checks from the verified
indexes that the shards hold every batch of every call exactly once (a missing or doubled
batch is named with its shard and the command that computes it again: SHARDS), then runs each
split task once from the stores with no model (``kit.evaluate.shard.mapreduce.reduce_tasks``)
and returns its run.json entry and mteb's result file. ``within_files`` are the index files a
merged bundle keeps under ``shards/<I>/within/``, so ``verify`` checks the plan again.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from kit.bundle.jsonread import parse
from kit.bundle.scores import ScoreError, task_scores
from kit.bundle.within import (
    MODE,
    ShardIndex,
    index_files,
    parse_index,
    plan_problems,
    recompute_command,
)
from kit.errors import ExitCode, KitError
from kit.runfolder import MODEL_META, SHARDS, WITHIN


def is_within(shard: dict[str, Any]) -> bool:
    """Whether a shard record is a within-task plan's."""
    return shard.get("mode") == MODE


def indexes_of(shards: Sequence[Any]) -> list[ShardIndex]:
    """Each verified shard bundle's index (refused: SHARDS)."""
    out = []
    for s in shards:
        try:
            out.append(parse_index(index_files(s.members, f"{WITHIN}/"), s.label))
        except (ValueError, UnicodeDecodeError) as e:
            raise KitError(f"{s.label}: within-task index refused: {e}", ExitCode.SHARDS) from None
    return out


def check_plan(shards: Sequence[Any]) -> list[ShardIndex]:
    """The shards' indexes once they hold every batch of every call exactly once."""
    run = shards[0].run
    indexes = indexes_of(shards)
    problems = plan_problems(indexes, lambda i, tasks: recompute_command(run, i, tasks))
    recorded = {c["task"] for s in indexes for c in s.calls.values()}
    problems += [
        f"{t}: no shard recorded a call of this split task"
        for t in run["shard"].get("split") or []
        if t not in recorded
    ]
    if problems:
        more = f"; and {len(problems) - 1} more" if len(problems) > 1 else ""
        raise KitError(
            f"the shards do not hold every batch once: {problems[0]}{more}", ExitCode.SHARDS
        )
    return indexes


def reduce_split_tasks(
    shards: Sequence[Any], stores: Iterable[Path], offline: bool
) -> dict[str, tuple[dict[str, Any], bytes]]:
    """Each split task's merged run.json entry and result file, from the shards' stores."""
    from kit.evaluate.shard.mapreduce import ReduceRequest, reduce_tasks
    from kit.evaluate.shard.store import MergedStore, find_packs

    indexes = check_plan(shards)
    run, split = shards[0].run, list(shards[0].shard.get("split") or [])
    stores = [Path(p) for p in stores]
    packs = find_packs(stores, run["shard"]["count"])
    lost = [i.index for i in indexes if i.index not in packs and i.batches]
    if lost:
        where = ", ".join(str(p) for p in stores) or "none given"
        raise KitError(
            f"no store holds the batches of shard(s) {lost} (shard-I-of-N/pack.f32; stores: "
            f"{where}): give the shared store with --store DIR",
            ExitCode.NOT_FOUND,
        )
    res = run["resolved"]
    req = ReduceRequest(
        res["model"],
        res["revision"],
        res.get("benchmark"),
        res["batch_size"],
        res["seed"],
        "allow_revision_mismatch" in " ".join(run["overrides"]),
        offline,
    )
    store = MergedStore(indexes, packs)
    try:
        with tempfile.TemporaryDirectory(prefix="repro-kit-reduce-") as work:
            reduced = reduce_tasks(split, store, req, Path(work))
    finally:
        store.close()
    out = {r.name: (_entry(shards, r), r.result) for r in reduced}
    meta = next((r.model_meta for r in reduced if r.model_meta), None)
    if meta is not None:  # shards that only mapped published no model_meta.json
        out[MODEL_META] = ({}, meta)
    return out


def _entry(shards: Sequence[Any], reduced: Any) -> dict[str, Any]:
    """The merged run.json entry of a split task: shard 0's record, scored by the reduce."""
    mapped = [next(t for t in s.run["tasks"] if t["name"] == reduced.name) for s in shards]
    entry = {k: v for k, v in mapped[0].items() if k not in ("within", "shard", "error")}
    try:
        main = task_scores(parse(reduced.result, allow_nan=True), entry.get("eval_splits"))
    except (ScoreError, ValueError) as e:
        raise KitError(f"{reduced.name}: the reduce's result file: {e}", ExitCode.SCORES) from None
    longest = max(float(t.get("duration_seconds") or 0) for t in mapped)
    entry.update(
        status="complete",
        main_score=main["main_score"],
        dataset=reduced.dataset,
        evaluation_time=reduced.evaluation_time,
        duration_seconds=round(longest + reduced.seconds, 3),
        within={
            "shards": {
                str(s.shard["index"]): t.get("within") for s, t in zip(shards, mapped, strict=True)
            },
            "reduce_seconds": reduced.seconds,
        },
    )
    return entry


def within_files(shard: Any) -> dict[str, bytes]:
    """A shard bundle's index files as a merged bundle keeps them (``shards/<I>/within/``)."""
    prefix = f"{WITHIN}/"
    return {
        f"{SHARDS}/{shard.shard['index']}/{name}": data
        for name, data in shard.members.items()
        if name.startswith(prefix)
    }
