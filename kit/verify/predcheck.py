"""``verify --recompute``: every score of a verified bundle recomputed from its predictions.

Per complete task with a predictions member: load the task and its data here (``TaskSource``:
``kit.verify.mtebedge``, offline from the HF cache), read the member strictly, check each
(split, subset) against the binding the run recorded (dataset, revision really loaded, rows,
hashes of the ordered inputs and gold labels, task parameters: PREDICTIONS_UNBOUND on a
difference), recompute with mteb's own functions (``kit.verify.recompute``) and compare every
value the raw result file holds (``kit.verify.scorematch``: RECOMPUTE_MISMATCH, one line per
value). Each task becomes one check of the verify report, so the report says per task whether
it was recomputed, and the first failure's code is the exit code.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from kit.bundle.binding import binding
from kit.bundle.predictions import check_binding, read_predictions, unbound
from kit.bundle.records import BundleRecords
from kit.errors import ExitCode, KitError
from kit.verify.checks import VerifyReport
from kit.verify.recompute import Edge, recompute_task
from kit.verify.scorematch import compare_with_raw


class TaskSource(Edge, Protocol):
    """Loads a task with its data (and says which dataset revision was really loaded)."""

    def load_task(self, name: str) -> tuple[Any, str | None]: ...


@dataclass
class TaskRecompute:
    """What recompute found for one task (``ok`` None: not recomputed, with the reason)."""

    task: str
    ok: bool | None
    reason: str
    code: ExitCode = ExitCode.OK
    compared: int = 0
    mismatches: list[str] = field(default_factory=list)
    not_recomputable: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The task's row of ``verify --recompute --json`` (under ``recompute``)."""
        return {
            "task": self.task,
            "ok": self.ok,
            "reason": self.reason,
            "code": int(self.code),
            "compared": self.compared,
            "mismatches": self.mismatches,
            "not_recomputable": self.not_recomputable,
            "seconds": round(self.seconds, 3),
        }


def recompute_bundle(
    run: Mapping[str, Any], records: BundleRecords, source: TaskSource
) -> list[TaskRecompute]:
    """Recompute every complete task of a verified bundle (``run``: its run.json)."""
    out = []
    for entry in run["tasks"]:
        if entry["status"] != "complete":
            continue
        t0 = time.perf_counter()
        try:
            row = _task(entry, records, source)
        except KitError as e:
            row = TaskRecompute(entry["name"], False, e.message, e.code)
        except (ValueError, TypeError, KeyError, IndexError) as e:
            # predictions that pass the shape check but that mteb's scorers cannot take with
            # this data (a label of another type, an index out of range): they do not line up
            why = f"mteb cannot score these predictions with the data here ({type(e).__name__})"
            row = TaskRecompute(entry["name"], False, why, ExitCode.PREDICTIONS_UNBOUND)
        row.seconds = time.perf_counter() - t0
        out.append(row)
    return out


def _task(entry: Mapping[str, Any], records: BundleRecords, source: TaskSource) -> TaskRecompute:
    name = entry["name"]
    block = entry.get("predictions")
    if not block or block.get("member") is None:
        why = (block or {}).get("reason") or "the bundle holds no predictions (an older kit)"
        return TaskRecompute(name, None, f"not recomputed: {why}")
    kind = block["kind"]
    preds = read_predictions(records.members[block["member"]], kind)
    task, revision = source.load_task(name)
    try:
        recorded = {(b["split"], b["subset"]): b for b in block.get("bindings") or []}
        rows = {}
        for subset, split in preds.payloads:
            if (split, subset) not in recorded:
                raise unbound(f"{name} {split}/{subset}: no binding recorded for these predictions")
            here = binding(task, kind, split, subset, revision)
            check_binding(name, recorded[(split, subset)], here)
            rows[(split, subset)] = here.rows
        subsets = recompute_task(task, kind, preds, source, rows=rows, top_k=block.get("top_k"))
    finally:
        task.unload_data()
    raw = records.json(entry["result_file"], allow_nan=True)
    missing = {(split, subset) for split, subset in block.get("missing") or []}
    for split, entries in raw["scores"].items():
        for e in entries:
            key = (split, e["hf_subset"])
            if (e["hf_subset"], split) not in preds.payloads and key not in missing:
                raise unbound(f"{name} {split}/{e['hf_subset']}: scored, but no predictions")
    mismatches, compared = compare_with_raw(name, subsets, raw["scores"])
    marks = {mark: why for s in subsets for mark, why in s.not_recomputable.items()}
    for split, subset in sorted(missing):
        marks[f"{split}/{subset}"] = "evaluated without predictions"
    if mismatches:
        more = f" (+{len(mismatches) - 1} more)" if len(mismatches) > 1 else ""
        return TaskRecompute(
            name,
            False,
            mismatches[0].line() + more,
            ExitCode.RECOMPUTE_MISMATCH,
            compared,
            [m.line() for m in mismatches],
            marks,
        )
    note = f"; not recomputable: {', '.join(sorted(marks))} ({_why(marks)})" if marks else ""
    reason = f"{compared} values recomputed from predictions, equal{note}"
    return TaskRecompute(name, True, reason, compared=compared, not_recomputable=marks)


def _why(marks: Mapping[str, str]) -> str:
    return "; ".join(sorted(set(marks.values())))


def add_recompute(
    report: VerifyReport, run: Mapping[str, Any], records: BundleRecords, source: TaskSource
) -> list[TaskRecompute]:
    """Recompute a verified bundle and add one check per task to ``report``."""
    rows = recompute_bundle(run, records, source)
    for r in rows:
        report.add(f"recompute {r.task}", r.ok, r.reason, r.code)
    report.recompute = [r.to_json() for r in rows]
    return rows
