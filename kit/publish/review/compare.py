"""A pull request's file against what the bundles yield: the first difference, what was removed.

Pure: bytes in, a ``Comparison`` out. Task files are compared score by score per split and
subset, exactly (mteb rounds nothing here: equal floats, NaN equal to NaN), then their other
keys; model_meta.json canonically (``kit.publish.repomerge.canonical_meta``: lists of names
sorted); run_settings.jsonl line by line. A difference names its key path (file, task, split,
subset, key) and both values; "removed" names each split/subset the pull request drops.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from kit.bundle.jsonread import parse
from kit.errors import KitError
from kit.publish.repomerge import canonical_meta, subsets
from kit.runfolder import MODEL_META, RUN_SETTINGS

ABSENT = "(absent)"


@dataclass(frozen=True)
class Difference:
    """The first place the pull request's file and the bundle's yield disagree."""

    where: tuple[str, ...]  # file, task, split, subset, key... (or file, line N)
    pr: Any
    bundle: Any

    def text(self) -> str:
        return (
            f"{' / '.join(self.where)}: pull request {_show(self.pr)}, bundle {_show(self.bundle)}"
        )

    def as_json(self) -> dict[str, Any]:
        return {"where": list(self.where), "pull_request": self.pr, "bundle": self.bundle}


@dataclass(frozen=True)
class SubsetRow:
    """One (split, subset) of a task file: both main scores and what became of it."""

    split: str
    subset: str
    pr: Any  # the pull request's main score (None: absent)
    bundle: Any  # the bundle's (None: absent)
    status: str  # equal, differs, removed, not in any bundle


@dataclass(frozen=True)
class Comparison:
    difference: Difference | None = None
    removed: tuple[str, ...] = ()
    rows: tuple[SubsetRow, ...] = ()

    @property
    def verdict(self) -> str:
        if self.removed:
            return "removed"
        return "differs" if self.difference is not None else "backed"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value if value == ABSENT else json.dumps(value)
    if isinstance(value, float):
        return repr(value)
    return json.dumps(value, default=str)[:200]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def first_difference(pr: Any, ours: Any, where: tuple[str, ...]) -> Difference | None:
    """The first key path where ``pr`` and ``ours`` differ (the bundle's key order first)."""
    if isinstance(pr, dict) and isinstance(ours, dict):
        for key in [*ours, *(k for k in pr if k not in ours)]:
            here = (*where, str(key))
            if key not in pr:
                return Difference(here, ABSENT, ours[key])
            if key not in ours:
                return Difference(here, pr[key], ABSENT)
            found = first_difference(pr[key], ours[key], here)
            if found is not None:
                return found
        return None
    if isinstance(pr, list) and isinstance(ours, list):
        for i, (a, b) in enumerate(zip(pr, ours, strict=False)):
            found = first_difference(a, b, (*where, str(i)))
            if found is not None:
                return found
        if len(pr) != len(ours):
            return Difference((*where, "length"), len(pr), len(ours))
        return None
    return None if _same(pr, ours) else Difference(where, pr, ours)


def _json(data: bytes) -> Any:
    try:
        return parse(data, allow_nan=True)
    except ValueError:
        return None


def _main(entry: dict[str, Any] | None) -> Any:
    return None if entry is None else entry.get("main_score")


def _entries(doc: Any) -> dict[str, int]:
    scores = doc.get("scores") if isinstance(doc, dict) else None
    if not isinstance(scores, dict):
        return {}
    return {s: len(es) if isinstance(es, list) else -1 for s, es in scores.items()}


def compare_task_file(name: str, pr_data: bytes, ours_data: bytes) -> Comparison:
    """A task file (``name``: its path), score by score per split and subset, then its other
    keys."""
    task = PurePosixPath(name).name.removesuffix(".json")
    pr, ours = _json(pr_data), _json(ours_data)
    if not isinstance(pr, dict):
        return Comparison(Difference((name,), "not an mteb result file", "mteb's result file"))
    theirs, mine = subsets(pr), subsets(ours)
    rows, first = [], None
    for key in sorted(mine.keys() | theirs.keys()):
        where = (name, task, *key)
        a, b = theirs.get(key), mine.get(key)
        found = None
        if a is None:
            status = "removed"
        elif b is None:
            status, found = "not in any bundle", Difference(where, _main(a), ABSENT)
        else:
            found = first_difference(a, b, where)
            status = "equal" if found is None else "differs"
        first = first or found
        rows.append(SubsetRow(key[0], key[1], _main(a), _main(b), status))
    removed = tuple(f"{r.split}/{r.subset}" for r in rows if r.status == "removed")
    if first is None:
        first = first_difference(_entries(pr), _entries(ours), (name, task, "scores entries"))
    if first is None:
        rest = {k: v for k, v in pr.items() if k != "scores"}
        mine_rest = {k: v for k, v in ours.items() if k != "scores"}
        first = first_difference(rest, mine_rest, (name, task))
    return Comparison(first, removed, tuple(rows))


def compare_model_meta(name: str, pr_data: bytes, ours_data: bytes) -> Comparison:
    """model_meta.json by canonical content (lists of names sorted)."""
    try:
        pr = json.loads(canonical_meta(pr_data))
    except KitError:
        return Comparison(Difference((name,), "not valid JSON", "mteb's model_meta.json"))
    ours = json.loads(canonical_meta(ours_data))
    return Comparison(first_difference(pr, ours, (name,)))


def compare_run_settings(name: str, pr_data: bytes, ours_data: bytes) -> Comparison:
    """run_settings.jsonl line by line."""
    pr, ours = pr_data.splitlines(), ours_data.splitlines()
    for i in range(max(len(pr), len(ours))):
        a = pr[i].decode("utf-8", "replace") if i < len(pr) else ABSENT
        b = ours[i].decode("utf-8", "replace") if i < len(ours) else ABSENT
        if a != b:
            return Comparison(Difference((name, f"line {i + 1}"), a, b))
    return Comparison()


def compare_file(path: str, pr_data: bytes, ours_data: bytes) -> Comparison:
    """The comparison a file of a results folder gets, by its name; differences name ``path``."""
    name = PurePosixPath(path).name
    if name == MODEL_META:
        return compare_model_meta(path, pr_data, ours_data)
    if name == RUN_SETTINGS:
        return compare_run_settings(path, pr_data, ours_data)
    return compare_task_file(path, pr_data, ours_data)
