"""Merge an export into files a results-repository checkout already holds, as mteb does.

- ``<Task>.json``: as mteb's own submit (``_has_unsubmitted_scores``), a file that holds every
  (split, subset) of the bundle, each main score within the drift bound, is left alone byte for
  byte. Otherwise mteb's ``TaskResult.merge`` adds the subsets it lacks and replaces those beyond
  the bound (``Drift``; the rules decide whether that is accepted), with only the taken scores,
  so the times of runs not added are not summed; the entries kept are the repository's own.
- ``run_settings.jsonl``: mteb's keyed merge, one entry per (task, split, subset), of only the
  scores the export writes.
- ``model_meta.json``: compared by canonical content (lists of names sorted) and written
  canonically; a differing content is replaced only when asked.

Each function takes bytes and returns bytes: nothing here touches the checkout.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.bundle.jsonread import parse
from kit.errors import ExitCode, KitError
from kit.runfolder import MODEL_META

DRIFT_LIMIT = 0.001  # the results repository's MTEB_SCORE_EPSILON (tests/test_results_diff.py)


@dataclass(frozen=True)
class Drift:
    """A main score moved, old and new (on the 0-1 scale the repository uses), and against what."""

    split: str
    subset: str
    old: float
    new: float
    against: str = ""

    @property
    def delta(self) -> float:
        return self.new - self.old

    @property
    def too_far(self) -> bool:
        return abs(self.delta) > DRIFT_LIMIT


Key = tuple[str, str]  # (split, hf_subset)


@dataclass(frozen=True)
class Merged:
    """A file's bytes after the export and what happened: written, merged, replaced, unchanged
    (or refused: model_meta.json of other content). ``taken``: the (split, subset) scores that
    come from the bundle; ``drift``: the checkout's main scores the export replaces."""

    data: bytes
    action: str
    drift: tuple[Drift, ...] = ()
    taken: tuple[Key, ...] = ()
    reason: str = ""


def _read(data: bytes, what: str) -> Any:
    try:
        return parse(data, allow_nan=True)
    except ValueError as e:
        raise KitError(f"{what} is not valid JSON: {e}", ExitCode.EXPORT_RULES) from None


def subsets(result: Any) -> dict[Key, dict[str, Any]]:
    """(split, hf_subset) -> that subset's scores in an mteb result file."""
    out: dict[Key, dict[str, Any]] = {}
    scores = result.get("scores") if isinstance(result, dict) else None
    for split, entries in (scores or {}).items() if isinstance(scores, dict) else ():
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict):
                out[(split, str(entry.get("hf_subset", "default")))] = entry
    return out


def _main(entry: Mapping[str, Any]) -> float | None:
    value = entry.get("main_score")
    if not isinstance(value, (int, float)) or value != value:
        return None
    return value / 100 if value > 1 else float(value)  # the repository's own scale rule


def drifts(old: Any, new: Any, against: str = "") -> tuple[Drift, ...]:
    """Every (split, subset) both files hold, with its old and new main score."""
    before, after = subsets(old), subsets(new)
    out = []
    for key in sorted(before.keys() & after.keys()):
        a, b = _main(before[key]), _main(after[key])
        if a is not None and b is not None:
            out.append(Drift(key[0], key[1], a, b, against))
    return tuple(out)


def _moved(
    have: Mapping[Key, Mapping[str, Any]], add: Mapping[Key, Mapping[str, Any]]
) -> list[Key]:
    """The bundle's subsets the checkout holds with a main score beyond the drift bound."""
    moved = []
    for key in add.keys() & have.keys():
        a, b = _main(have[key]), _main(add[key])
        if a is None or b is None or abs(b - a) > DRIFT_LIMIT:
            moved.append(key)
    return sorted(moved)


def merge_task_file(old: bytes | None, new: bytes, name: str) -> Merged:
    """The bundle's result file ``new`` merged into the repository's ``old`` (pure).

    As mteb's own submit (``_has_unsubmitted_scores``): a file that holds every (split, subset)
    of the bundle, each main score within the drift bound, is left alone byte for byte. Subsets
    it lacks are added and subsets beyond the bound replaced by mteb's ``TaskResult.merge``
    (the rules decide whether that drift is accepted); the entries kept are the repository's.
    """
    if old is None:
        return Merged(new, "written", taken=tuple(sorted(subsets(_read(new, name)))))
    if old == new:
        return Merged(old, "unchanged")
    before, after = _read(old, f"{name} in the repository"), _read(new, name)
    have, add = subsets(before), subsets(after)
    if add and add.keys() <= have.keys() and not _moved(have, add):
        return Merged(old, "unchanged")  # no mteb needed, no second sum of evaluation times
    return _mteb_merge(old, new, name, before, after)


def _mteb_merge(old: bytes, new: bytes, name: str, before: Any, after: Any) -> Merged:
    """mteb's view of both files (it reads older formats), then mteb's merge of what is taken."""
    from mteb import TaskResult
    from mteb.cache.result_cache import _has_unsubmitted_scores

    with tempfile.TemporaryDirectory(prefix="repro-kit-merge-") as tmp:
        paths = [Path(tmp, "old.json"), Path(tmp, "new.json"), Path(tmp, "merged.json")]
        paths[0].write_bytes(old)
        paths[1].write_bytes(new)
        try:
            ours, theirs = TaskResult.from_disk(paths[1]), TaskResult.from_disk(paths[0])
            have = {(s, e["hf_subset"]): e for s, es in theirs.scores.items() for e in es}
            add = subsets(after)
            moved = _moved(have, add)
            if not moved and theirs.is_mergeable(ours):
                if not _has_unsubmitted_scores(paths[1], paths[0]):  # mteb's submit: nothing new
                    return Merged(old, "unchanged")
            elif not moved and add.keys() <= have.keys():
                return Merged(old, "unchanged")  # other dataset revision, nothing new: as mteb
            theirs.is_mergeable(ours, raise_error=True)
        except (ValueError, KeyError, TypeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise KitError(
                f"{name}: mteb cannot merge it with the file in the repository: {first}",
                ExitCode.EXPORT_RULES,
            ) from None
        taken = sorted((add.keys() - have.keys()) | set(moved))
        drift = tuple(
            d
            for d in drifts({"scores": _as_scores(have)}, after, "the checkout's file")
            if (d.split, d.subset) in moved
        )
        action = "replaced" if moved else "merged"
        if have.keys() <= set(taken):  # no score of the checkout stays: nor do its times
            return Merged(new, action, drift, tuple(taken))
        part = ours.model_copy(update={"scores": _only(ours.scores, set(taken))})
        theirs.merge(part).to_disk(paths[2])
        merged = json.loads(paths[2].read_bytes())
    data = _keep_entries(merged, before, after, set(taken))
    return Merged(data, action, drift, tuple(taken))


def _as_scores(entries: dict[Key, Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for (split, _), entry in entries.items():
        out.setdefault(split, []).append(entry)
    return out


def _only(scores: dict[str, list[Any]], keys: set[Key]) -> dict[str, list[Any]]:
    """The scores of the (split, subset) pairs in ``keys``."""
    out = {s: [e for e in es if (s, e["hf_subset"]) in keys] for s, es in scores.items()}
    return {s: es for s, es in out.items() if es}


def _keep_entries(merged: dict[str, Any], before: Any, after: Any, taken: set[Key]) -> bytes:
    """mteb's merged file, with each score entry as the file it came from holds it.

    mteb's ``to_disk`` rounds every score to 6 digits: the repository's entries would change
    although the export does not touch them. Top-level keys keep the repository's order.
    """
    old, new = subsets(before), subsets(after)
    for split, entries in merged.get("scores", {}).items():
        for i, entry in enumerate(entries):
            key = (split, entry.get("hf_subset"))
            source = new if key in taken else old
            if key in source:
                entries[i] = source[key]
    order = [k for k in before if k in merged] if isinstance(before, dict) else []
    out = {k: merged[k] for k in [*order, *(k for k in merged if k not in order)]}
    return json.dumps(out, indent=2).encode()


def merge_run_settings(
    old: bytes | None, new: bytes, keep: set[tuple[str, str, str]] | None = None
) -> Merged | None:
    """mteb's keyed merge of run_settings.jsonl: one entry per (task, split, subset).

    Only the bundle's entries whose (task, split, subset) scores the export writes (``keep``;
    None: all) are merged: a task file left alone keeps the settings line of the run that
    wrote it. None when there is neither a file nor an entry to write.
    """
    if keep is None and (old is None or old == new):
        return Merged(new, "written") if old is None else Merged(old, "unchanged")
    from mteb.results.task_result import (
        _expand_run_settings_entry,
        _read_run_settings_from_file,
        _write_and_merge_keyed_json,
    )

    with tempfile.TemporaryDirectory(prefix="repro-kit-merge-") as tmp:
        target, incoming = Path(tmp, "old.jsonl"), Path(tmp, "new.jsonl")
        incoming.write_bytes(new)
        every = [
            ((task, split, subset), {"task": task, "split": split, "subset": subset, **settings})
            for entry in _read_run_settings_from_file(incoming)
            for (task, split, subset), _, settings in _expand_run_settings_entry(entry)
        ]
        entries = [entry for scope, entry in every if keep is None or scope in keep]
        everything = len(entries) == len(every)
        if old is None:
            if not entries:
                return None
            if everything:
                return Merged(new, "written")
        elif not entries or (old == new and everything):
            return Merged(old, "unchanged")
        target.write_bytes(old or b"")
        _write_and_merge_keyed_json(target, entries)
        merged = target.read_bytes()
    if old is None:
        return Merged(merged, "written")
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
    """Canonical model_meta.json; an existing one of other content is ``refused`` (left as it
    is, with the reason) unless ``replace``."""
    data = canonical_meta(new)
    if old is None:
        return Merged(data, "written")
    if canonical_meta(old) == data:
        return Merged(old, "unchanged")
    key = _first_difference(_read(old, where), json.loads(data))
    if not replace:
        return Merged(old, "refused", reason=f"{where} exists with other content ({key} differs)")
    return Merged(data, "replaced", reason=f"other content ({key} differed)")
