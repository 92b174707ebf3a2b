"""Compare scores recomputed from predictions with mteb's raw result file.

``compare_with_raw`` walks every metric the raw file writes for each (split, subset),
nested lists and per-level dicts included, and reports each value that differs from its
recomputed one by more than mteb's rounding (it writes ``round(score, 6)``), or that was
not recomputed. Metrics ``kit.verify.recompute`` marks not recomputable are left out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kit.verify.recompute import SubsetScores

_NOT_METRICS = frozenset({"hf_subset", "languages", "mteb_version"})
_AT_K = re.compile(r"_at_(\d+)")
TOLERANCE = 0.5e-6 + 1e-12  # mteb writes round(score, 6)


@dataclass(frozen=True)
class Mismatch:
    """One metric whose recomputed value differs from the raw file's (or is missing)."""

    task: str
    split: str
    subset: str
    metric: str
    raw: Any
    recomputed: Any

    def line(self) -> str:
        """``TASK SPLIT/SUBSET METRIC: raw X, recomputed Y`` (one line)."""
        return (
            f"{self.task} {self.split}/{self.subset} {self.metric}: raw {self.raw!r}, "
            f"recomputed {self.recomputed!r}"
        )


def _equal(raw: Any, rec: Any) -> bool:
    if isinstance(raw, bool) or isinstance(rec, bool):
        return raw is rec
    if raw is None or rec is None:
        return raw is None and rec is None
    if isinstance(raw, int | float) and isinstance(rec, int | float):
        r, c = float(raw), float(rec)
        if math.isnan(r) or math.isnan(c):
            return math.isnan(r) and math.isnan(c)
        return abs(r - c) <= TOLERANCE
    return bool(raw == rec)


def _walk(raw: Any, rec: Any, path: str, found: list[tuple[str, Any, Any]]) -> None:
    if isinstance(raw, Mapping):
        if not isinstance(rec, Mapping):
            found.append((path, raw, rec))
            return
        for key, value in raw.items():
            _walk(value, rec.get(key, _MISSING), f"{path}.{key}" if path else str(key), found)
    elif isinstance(raw, list):
        if not isinstance(rec, list) or len(rec) != len(raw):
            found.append((path, raw, rec))
            return
        for i, (a, b) in enumerate(zip(raw, rec, strict=True)):
            _walk(a, b, f"{path}[{i}]", found)
    elif rec is _MISSING or not _equal(raw, rec):
        found.append((path, raw, None if rec is _MISSING else rec))


_MISSING = object()


def _skipped(metric: str, marks: Mapping[str, str]) -> bool:
    for mark in marks:
        if mark.startswith("@"):
            m = _AT_K.search(metric)
            if m and f"@{m.group(1)}" == mark:
                return True
        elif metric.endswith(mark) and metric.startswith("nauc"):
            return True
    return False


def compare_with_raw(
    task_name: str, recomputed: Sequence[SubsetScores], raw_scores: Mapping[str, Sequence[Any]]
) -> tuple[list[Mismatch], int]:
    """Every metric the raw result file writes against its recomputed value.

    Returns the mismatches and the number of values compared (nested lists and per-level
    dicts count each value). A metric marked not recomputable is left out, not passed.
    """
    mismatches: list[Mismatch] = []
    compared = 0
    by_key = {(s.split, s.subset): s for s in recomputed}
    for split, entries in raw_scores.items():
        for entry in entries:
            mine = by_key.get((split, entry["hf_subset"]))
            if mine is None:
                continue  # the caller checks that predictions cover every (split, subset)
            for metric, value in entry.items():
                if metric in _NOT_METRICS or _skipped(metric, mine.not_recomputable):
                    continue
                found: list[tuple[str, Any, Any]] = []
                _walk(value, mine.scores.get(metric, _MISSING), metric, found)
                compared += _count(value)
                mismatches += [
                    Mismatch(task_name, split, entry["hf_subset"], p, a, b) for p, a, b in found
                ]
    return mismatches, compared


def _count(value: Any) -> int:
    if isinstance(value, Mapping):
        return sum(_count(v) for v in value.values())
    if isinstance(value, list):
        return sum(_count(v) for v in value)
    return 1
