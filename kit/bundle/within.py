"""The within-task shard index: what binds a shard's stored embeddings to its signed bundle.

A within-task shard (``evaluate --shard I/N --within-tasks``) computes the batches ``g`` with
``g mod N == I`` of the encoder's own batching of every encode call a split task makes, and
appends their rows to a store outside the bundle (``kit/evaluate/shard/store.py``). Its run
folder and bundle hold the index under ``within/`` (a merged bundle: ``shards/<I>/within/``)::

    within/settings.json      {"format", "settings", "digest", "index", "count"}
    within/calls.jsonl        one line per encode call: call key, task, split, subset, seq,
                              prompt type, options, route, n, batch size, first (global number
                              of its first batch in the task), every batch key, mine (the
                              batches this shard computed), texts and order sha256
    within/batches.jsonl      one line per stored batch: key, offset, rows, dim, dtype, sha256
    within/orders/<call>.i32  the encoder's order of that call (int32, little-endian)

``parse_index`` reads one index from its files (bytes; hostile until its bundle is verified:
every field's type is checked here, and a refusal is a ``ValueError``); ``plan_problems``
says, from the indexes alone, whether they hold every batch of every call exactly once.
Layer 1: plain data, no numpy.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

FORMAT = "repro-kit within-task store v1"
MODE = "within-tasks"  # run.json's shard.mode of a within-task shard (and of its merge)
SETTINGS = "settings.json"
CALLS = "calls.jsonl"
BATCHES = "batches.jsonl"
ORDERS = "orders"
ORDER_SUFFIX = ".i32"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CALL_FIELDS: dict[str, Any] = {
    "call": str,
    "task": str,
    "split": str,
    "subset": str,
    "seq": int,
    "n": int,
    "batch_size": int,
    "first": int,
    "batch_keys": list,
    "mine": list,
    "texts_sha256": str,
    "order_sha256": str,
}
_BATCH_FIELDS: dict[str, Any] = {
    "key": str,
    "offset": int,
    "rows": int,
    "dim": int,
    "dtype": str,
    "sha256": str,
}


def order_name(call: str) -> str:
    """The file name of a call's order inside ``orders/``."""
    return f"{call}{ORDER_SUFFIX}"


@dataclass
class ShardIndex:
    """One shard's index: its settings, calls, stored batches and the orders of its calls."""

    index: int
    count: int
    digest: str
    settings: dict[str, Any]
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    orders: dict[str, bytes] = field(default_factory=dict)
    label: str = ""

    def tasks(self) -> list[str]:
        return sorted({c["task"] for c in self.calls.values()})


def _typed(record: Any, fields: Mapping[str, Any], what: str) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise ValueError(f"{what} is not a JSON object")
    for name, kind in fields.items():
        value = record.get(name)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ValueError(f"{what}: {name} is not a {kind.__name__}")
    return record


def _lines(data: bytes, what: str) -> list[Any]:
    out = []
    for i, line in enumerate(data.decode("utf-8").splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError:
                raise ValueError(f"{what} line {i} is not JSON") from None
    return out


def _check_call(rec: dict[str, Any], what: str) -> None:
    keys, mine = rec["batch_keys"], rec["mine"]
    n, bs = rec["n"], rec["batch_size"]
    if n < 0 or bs < 1 or rec["first"] < 0 or len(keys) != -(-n // bs):
        raise ValueError(f"{what}: {len(keys)} batch keys for {n} texts in batches of {bs}")
    if not all(isinstance(k, str) and _HEX64.match(k) for k in [rec["call"], *keys]):
        raise ValueError(f"{what}: a key is not a sha256")
    if not all(isinstance(b, int) and 0 <= b < len(keys) for b in mine):
        raise ValueError(f"{what}: mine names a batch the call does not have")


def parse_index(files: Mapping[str, bytes], label: str = "") -> ShardIndex:
    """A shard's index from its files (names relative to ``within/``); ValueError if refused."""
    try:
        head = _typed(
            json.loads(files[SETTINGS]), {"digest": str, "index": int, "count": int}, SETTINGS
        )
    except KeyError:
        raise ValueError(f"no {SETTINGS}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{SETTINGS}: {e}") from None
    if head.get("format") != FORMAT or not isinstance(head.get("settings"), dict):
        raise ValueError(f"{SETTINGS}: not a {FORMAT!r} record")
    count, index = head["count"], head["index"]
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"{SETTINGS}: shard {index} of {count}")
    out = ShardIndex(index, count, head["digest"], head["settings"], label=label)
    for rec in _lines(files.get(CALLS, b""), CALLS):
        what = f"{CALLS} call {rec.get('call', '?') if isinstance(rec, dict) else '?'}"
        _check_call(_typed(rec, _CALL_FIELDS, what), what)
        out.calls[rec["call"]] = rec
        name = f"{ORDERS}/{order_name(rec['call'])}"
        data = files.get(name)
        if data is None or hashlib.sha256(data).hexdigest() != rec["order_sha256"]:
            raise ValueError(f"{name} is missing or differs from its call's order_sha256")
        if len(data) != 4 * rec["n"]:
            raise ValueError(f"{name}: {len(data)} bytes for {rec['n']} texts")
        out.orders[rec["call"]] = data
    for rec in _lines(files.get(BATCHES, b""), BATCHES):
        _typed(rec, _BATCH_FIELDS, f"{BATCHES} line")
        if rec["dtype"] not in ("f4", "f2", "f8") or min(rec["rows"], rec["dim"]) < 0:
            raise ValueError(f"{BATCHES}: batch {rec['key'][:12]}: {rec['dtype']!r} rows")
        out.batches[rec["key"]] = rec
    return out


def is_within_shard(run: Mapping[str, Any]) -> bool:
    """Whether a run record is a within-task shard's (not a merge of them)."""
    shard = run.get("shard")
    return isinstance(shard, dict) and shard.get("mode") == MODE and shard.get("index") is not None


def index_files(members: Mapping[str, bytes], prefix: str) -> dict[str, bytes]:
    """The files of the index under ``prefix`` (``within/`` or ``shards/<I>/within/``)."""
    return {k[len(prefix) :]: v for k, v in members.items() if k.startswith(prefix)}


def coverage(
    claims: Mapping[int, Sequence[int]], batches: int
) -> tuple[list[int], dict[int, list[int]]]:
    """(missing batch numbers, {doubled batch: shards}) given ``{shard: batches it holds}``."""
    seen: dict[int, list[int]] = {}
    for shard, held in sorted(claims.items()):
        for b in held:
            seen.setdefault(b, []).append(shard)
    missing = [b for b in range(batches) if b not in seen]
    doubled = {b: s for b, s in sorted(seen.items()) if len(s) > 1}
    return missing, doubled


def first_diff(a: Mapping[str, Any], b: Mapping[str, Any], prefix: str = "") -> str:
    """The first setting (dotted path) whose value differs, as ``name: a vs b``."""
    for k in sorted(set(a) | set(b)):
        x, y = a.get(k), b.get(k)
        if isinstance(x, dict) and isinstance(y, dict):
            if x != y:
                return first_diff(x, y, f"{prefix}{k}.")
        elif x != y:
            return f"{prefix}{k}: {x!r} vs {y!r}"
    return "same settings"


def settings_problem(indexes: Sequence[ShardIndex]) -> str | None:
    """Why the shards cannot be one machine's batches (count, settings, an index twice)."""
    first = indexes[0]
    seen: dict[int, str] = {}
    for s in indexes:
        if s.count != first.count:
            return f"{s.label} is a shard of {s.count}, {first.label} of {first.count}"
        if s.digest != first.digest:
            why = first_diff(first.settings, s.settings)
            return (
                f"shard {s.index} ({s.label}) was made with other settings than shard "
                f"{first.index}: {why}; its embeddings would not be the ones one machine computes"
            )
        if s.index in seen:
            return f"shard {s.index} given twice: {seen[s.index]} and {s.label}"
        seen[s.index] = s.label
    return None


def plan_problems(indexes: Sequence[ShardIndex], recompute: Callable[[int, str], str]) -> list[str]:
    """Every reason the shards do not hold each batch of each call exactly once (empty: ok).

    ``recompute(index, tasks)`` is the command that computes shard ``index`` again.
    """
    if not indexes:
        return ["no within-task shard index"]
    problem = settings_problem(indexes)
    if problem:
        return [problem]
    count, by_index = indexes[0].count, {s.index: s for s in indexes}
    tasks = sorted({t for s in indexes for t in s.tasks()})
    out = [
        f"shard {i}/{count} is missing (its batches of {', '.join(tasks) or 'the split tasks'}); "
        f"recompute it: {recompute(i, ','.join(tasks))}"
        for i in range(count)
        if i not in by_index
    ]
    for key in sorted({k for s in indexes for k in s.calls}):
        out += _call_problems(key, by_index, recompute)
    return out


def _call_problems(
    key: str, by_index: Mapping[int, ShardIndex], recompute: Callable[[int, str], str]
) -> list[str]:
    records = {i: s.calls[key] for i, s in by_index.items() if key in s.calls}
    ref = next(iter(records.values()))
    where = f"{ref['task']} {ref['split']}/{ref['subset']} call {ref['seq']}"
    for i, rec in records.items():
        for name in ("texts_sha256", "order_sha256", "batch_keys", "n", "first", "batch_size"):
            if rec[name] != ref[name]:
                return [
                    f"{where}: shard {i} differs in {name} (the encoder ordered or cut the "
                    "batches differently: numpy's sort or the data differ between the machines)"
                ]
    count = by_index[next(iter(by_index))].count
    out = [
        f"{where}: shard {i} has no record of this call; recompute it: {recompute(i, ref['task'])}"
        for i in by_index
        if i not in records
    ]
    missing, doubled = coverage({i: r["mine"] for i, r in records.items()}, len(ref["batch_keys"]))
    for b, shards in doubled.items():
        out.append(f"{where}: batch {b} computed by shards {shards}; keep one")
    for b in missing:
        owner = (ref["first"] + b) % count
        if owner in records:
            out.append(
                f"{where}: batch {b} is not in shard {owner}'s record; recompute it: "
                f"{recompute(owner, ref['task'])}"
            )
    for b, bkey in enumerate(ref["batch_keys"]):
        owner = (ref["first"] + b) % count
        if owner in records and not any(bkey in s.batches for s in by_index.values()):
            out.append(
                f"{where}: batch {b} (shard {owner}) is not in any shard's store index; "
                f"recompute it: {recompute(owner, ref['task'])}"
            )
    return out


def recompute_command(run: Mapping[str, Any], index: int, tasks: str) -> str:
    """The command that computes shard ``index`` of a within-task plan again."""
    shard, resolved = run.get("shard") or {}, run.get("resolved") or {}
    bench = resolved.get("benchmark")
    select = (
        f'--benchmark "{bench}"'
        if bench
        else f"--tasks {','.join(shard.get('tasks_all') or [tasks])}"
    )
    return (
        f"repro-kit evaluate {resolved.get('model')} {select} --shard {index}/{shard.get('count')} "
        f"--within-tasks --store {shard.get('store') or 'STORE'} --batch-size "
        f"{resolved.get('batch_size')} --output OUT-{index}"
    )


def shard_index_problems(run: Mapping[str, Any], index: ShardIndex) -> list[str]:
    """Whether a within-task shard's own index is what its run.json says it computed."""
    shard = run.get("shard") or {}
    if (index.index, index.count) != (shard.get("index"), shard.get("count")):
        return [
            f"within/ is the index of shard {index.index}/{index.count}, run.json's "
            f"{shard.get('spec')}"
        ]
    out = []
    split = set(shard.get("split") or ())
    mapped = {t["name"] for t in run.get("tasks", []) if t.get("status") == "mapped"}
    for key, rec in index.calls.items():
        if rec["task"] not in split:
            out.append(f"within/ call {key[:12]} is of {rec['task']}, not a split task")
        own = [
            b
            for b in range(len(rec["batch_keys"]))
            if (rec["first"] + b) % index.count == index.index
        ]
        if rec["mine"] and rec["mine"] != own:
            out.append(
                f"within/ call {key[:12]}: computed batches {rec['mine']} are not "
                f"shard {index.index}'s"
            )
        lost = [b for b in rec["mine"] if rec["batch_keys"][b] not in index.batches]
        if lost:
            out.append(f"within/ call {key[:12]}: batch {lost[0]} is not in batches.jsonl")
    out += [
        f"{t} is mapped but within/ records no call of it"
        for t in sorted(mapped - {c["task"] for c in index.calls.values()})
    ]
    return out
