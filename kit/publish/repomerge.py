"""Merge an export into files a results-repository checkout already holds, as mteb does.

- ``<Task>.json``: mteb's ``TaskResult.merge`` (the bundle's subsets replace the same subsets;
  other splits, subsets and languages stay), written by mteb's ``TaskResult.to_disk``. A file
  that already holds every one of the bundle's subsets with the same scores is left alone, so
  exporting twice changes no byte. Replaced main scores are compared (``Drift``).
- ``run_settings.jsonl``: mteb's keyed merge, one entry per (task, split, subset).
- ``model_meta.json``: compared by canonical content (lists of names sorted) and written
  canonically; a differing content is replaced only when asked.

Each function takes bytes and returns bytes: nothing here touches the checkout.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.bundle.jsonread import parse
from kit.errors import ExitCode, KitError
from kit.runfolder import MODEL_META

DRIFT_LIMIT = 0.001  # the results repository's MTEB_SCORE_EPSILON (tests/test_results_diff.py)


@dataclass(frozen=True)
class Drift:
    """A main score the export replaces, old and new (on the 0-1 scale the repository uses)."""

    split: str
    subset: str
    old: float
    new: float

    @property
    def delta(self) -> float:
        return self.new - self.old

    @property
    def too_far(self) -> bool:
        return abs(self.delta) > DRIFT_LIMIT


@dataclass(frozen=True)
class Merged:
    """A file's bytes after the export and what happened: written, merged, replaced, unchanged."""

    data: bytes
    action: str
    drift: tuple[Drift, ...] = ()


def _read(data: bytes, what: str) -> Any:
    try:
        return parse(data, allow_nan=True)
    except ValueError as e:
        raise KitError(f"{what} is not valid JSON: {e}", ExitCode.EXPORT_RULES) from None


def subsets(result: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """(split, hf_subset) -> that subset's scores in an mteb result file."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    scores = result.get("scores") if isinstance(result, dict) else None
    for split, entries in (scores or {}).items():
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict):
                out[(split, str(entry.get("hf_subset", "default")))] = entry
    return out


def _main(entry: dict[str, Any]) -> float | None:
    value = entry.get("main_score")
    if not isinstance(value, (int, float)) or value != value:
        return None
    return value / 100 if value > 1 else float(value)  # the repository's own scale rule


def drifts(old: Any, new: Any) -> tuple[Drift, ...]:
    """Every (split, subset) both files hold, with its old and new main score."""
    before, after = subsets(old), subsets(new)
    out = []
    for key in sorted(before.keys() & after.keys()):
        a, b = _main(before[key]), _main(after[key])
        if a is not None and b is not None:
            out.append(Drift(key[0], key[1], a, b))
    return tuple(out)


def _mteb_merge(old: bytes, new: bytes, name: str) -> bytes:
    """mteb's own merge of two result files, serialised by mteb (``TaskResult.to_disk``)."""
    from mteb import TaskResult

    with tempfile.TemporaryDirectory(prefix="repro-kit-merge-") as tmp:
        paths = [Path(tmp, "old.json"), Path(tmp, "new.json"), Path(tmp, "merged.json")]
        paths[0].write_bytes(old)
        paths[1].write_bytes(new)
        try:
            merged = TaskResult.from_disk(paths[0]).merge(TaskResult.from_disk(paths[1]))
        except (ValueError, KeyError, TypeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise KitError(
                f"{name}: mteb cannot merge it with the file in the repository: {first}",
                ExitCode.EXPORT_RULES,
            ) from None
        merged.to_disk(paths[2])
        return paths[2].read_bytes()


def merge_task_file(old: bytes | None, new: bytes, name: str) -> Merged:
    """The bundle's result file ``new`` merged into the repository's ``old`` (pure)."""
    if old is None:
        return Merged(new, "written")
    if old == new:
        return Merged(old, "unchanged")
    before, after = _read(old, f"{name} in the repository"), _read(new, name)
    have, add = subsets(before), subsets(after)
    if add and all(have.get(k) == v for k, v in add.items()):
        return Merged(old, "unchanged")  # already merged: no second sum of evaluation times
    return Merged(_mteb_merge(old, new, name), "merged", drifts(before, after))


def merge_run_settings(old: bytes | None, new: bytes) -> Merged:
    """mteb's keyed merge of run_settings.jsonl: one entry per (task, split, subset)."""
    if old is None:
        return Merged(new, "written")
    if old == new:
        return Merged(old, "unchanged")
    from mteb.results.task_result import _read_run_settings_from_file, _write_and_merge_keyed_json

    with tempfile.TemporaryDirectory(prefix="repro-kit-merge-") as tmp:
        target, incoming = Path(tmp, "old.jsonl"), Path(tmp, "new.jsonl")
        target.write_bytes(old)
        incoming.write_bytes(new)
        _write_and_merge_keyed_json(target, _read_run_settings_from_file(incoming))
        merged = target.read_bytes()
    return Merged(old, "unchanged") if merged == old else Merged(merged, "merged")


def _sorted_lists(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_lists(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_sorted_lists(v) for v in value]
        if all(isinstance(v, str) for v in items):
            return sorted(items)
        return items
    return value


def canonical_meta(data: bytes) -> bytes:
    """model_meta.json as mteb writes it (``indent=4``), every list of names sorted.

    mteb dumps ``training_datasets`` from a set, in hash order: two honest runs differ in
    bytes only; the canonical form makes them equal.
    """
    return json.dumps(_sorted_lists(_read(data, MODEL_META)), indent=4).encode()


def _first_difference(a: Any, b: Any) -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in [*a, *(k for k in b if k not in a)]:
            if a.get(key) != b.get(key):
                return str(key)
    return "content"


def merge_model_meta(old: bytes | None, new: bytes, replace: bool, where: str) -> Merged:
    """Canonical model_meta.json; an existing one of other content is refused unless ``replace``."""
    data = canonical_meta(new)
    if old is None:
        return Merged(data, "written")
    if canonical_meta(old) == data:
        return Merged(old, "unchanged")
    if not replace:
        key = _first_difference(_read(old, where), json.loads(data))
        raise KitError(
            f"{where} exists with other content ({key} differs); nothing written "
            "(pass --overwrite to replace model_meta.json)",
            ExitCode.OUTPUT,
        )
    return Merged(data, "replaced")
