"""A task's per-sample predictions: what the run keeps of mteb's predictions file.

mteb writes ``<Task>_predictions.json`` into the folder the runner gives it (one per task,
under staging, so no other run merges into it; a resumed task's folder survives with the
staging cache, and mteb merges the (split, subset)s it runs now into it). ``collect`` reads
that file with the bundle's strict reader, cuts retrieval rankings to ``--predictions-top-k``,
gzips it and describes it: the ``predictions`` block run.json and the manifest record
(member, sha256, sizes, top-k, the binding of every (split, subset) to its data, and what is
missing and why). mteb is not imported here: the task object arrives loaded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.bundle.binding import binding, task_kind
from kit.bundle.predictions import (
    MAX_COMPRESSED,
    MAX_JSON_BYTES,
    PredictionsError,
    cut_file,
    gzip_member,
    read_predictions,
)
from kit.fsio import sha256_bytes
from kit.runfolder import predictions_member

NOT_ASKED = "not saved (--no-predictions)"


@dataclass(frozen=True)
class Collected:
    """A task's predictions member (None when not kept) and its ``predictions`` block."""

    member: bytes | None
    block: dict[str, Any]


def not_kept(reason: str, kind: str | None = None) -> dict[str, Any]:
    """The block of a task whose predictions are not in the run folder, with why."""
    return {"kind": kind, "member": None, "reason": reason}


def _over_cap(size: int) -> str:
    return f"over the {MAX_JSON_BYTES} bytes cap ({size}); use --predictions-top-k"


def mteb_file(folder: Path, task_name: str) -> Path:
    """The file mteb writes into ``prediction_folder`` (``AbsTask.prediction_file_name``)."""
    return folder / f"{task_name}_predictions.json"


def collect(
    task: Any,
    folder: Path,
    evaluated: Iterable[tuple[str, str]],
    top_k: int | None,
    revision: str | None,
) -> Collected:
    """Read, check, cut and gzip the predictions of ``task`` (its data still loaded).

    ``evaluated``: the (split, subset)s its result file holds; those without predictions are
    listed under ``missing`` (a subset an earlier attempt ran with predictions off).
    """
    name = task.metadata.name
    kind = task_kind(task)
    if kind is None:
        return Collected(None, not_kept(f"task type {type(task).__name__} not supported"))
    path = mteb_file(folder, name)
    if not path.is_file():
        return Collected(None, not_kept("mteb wrote no predictions file", kind))
    cut = top_k is not None and kind == "retrieval"
    size = path.stat().st_size
    if size > MAX_JSON_BYTES and not cut:  # not read at all (MindSmallReranking: ~3 GB)
        return Collected(None, not_kept(_over_cap(size), kind))
    data = path.read_bytes()
    if cut and top_k is not None:
        data = cut_file(data, top_k)
    if len(data) > MAX_JSON_BYTES:
        return Collected(None, not_kept(_over_cap(len(data)), kind))
    try:
        preds = read_predictions(data, kind, compressed=False)
    except PredictionsError as e:
        return Collected(None, not_kept(f"mteb's file is refused by the reader: {e.message}", kind))
    packed = gzip_member(data)
    if len(packed) > MAX_COMPRESSED:
        return Collected(None, not_kept(f"over the {MAX_COMPRESSED} bytes cap compressed", kind))
    held = {(split, subset) for subset, split in preds.payloads}
    wanted = list(evaluated)
    bindings = [
        binding(task, kind, split, subset, revision).to_json()
        for split, subset in wanted
        if (split, subset) in held
    ]
    block = {
        "kind": kind,
        "member": predictions_member(name),
        "reason": None,
        "sha256": sha256_bytes(packed),
        "bytes": len(packed),
        "json_bytes": len(data),
        "top_k": top_k if kind == "retrieval" else None,
        "bindings": bindings,
        "missing": [[s, sub] for s, sub in wanted if (s, sub) not in held],
    }
    return Collected(packed, block)


def collect_for_task(
    task: Any, folder: Path | None, result: Any, top_k: int | None, loads: Iterable[Any]
) -> Collected:
    """What the run keeps of a finished task's predictions (``folder``: mteb's, or None when
    not asked), bound to the dataset revision ``datasets`` really loaded (``loads``)."""
    if folder is None:
        return Collected(None, not_kept(NOT_ASKED))
    evaluated = [(split, e["hf_subset"]) for split, es in result.scores.items() for e in es]
    path = task.metadata.dataset["path"]
    revisions = {d.revision_loaded for d in loads if d.repo_id in (None, path)}
    revision = revisions.pop() if len(revisions) == 1 else task.metadata.dataset.get("revision")
    return collect(task, folder, evaluated, top_k, revision)
