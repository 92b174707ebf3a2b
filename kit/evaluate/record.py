"""run.json's one owner: the record of a run, changed only through ``RunRecord``'s methods.

``RunRecord.start`` makes the record of a fresh or resumed run (``previous``: the record the
folder holds); the runner then goes through ``add_task``, ``model_loaded``, ``seeds_set``,
``task_started`` / ``task_dataset`` / ``task_prompts`` / ``task_failed`` /
``task_predictions`` / ``task_done`` (a within-task shard's split task: ``task_mapped``), and
ends with ``finish``, or ``interrupted`` / ``failed`` (``kit.evaluate.faults.record_fault``
says which). ``save`` writes it as canonical JSON (kit/bundle/schemas/run.schema.json is its
schema); ``load`` reads it back. A re-run's folder adds what it reviewed (``attach_review``).

The typed parts: ``Resolved`` (the settings once resolved), ``TaskInfo`` (what mteb says of a
task), ``ModelRecord`` (what was loaded), ``TaskSummary`` (one task's outcome, for printing).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from kit import __version__
from kit.evaluate.options import EvalOptions
from kit.fsio import atomic_write_json
from kit.runfolder import RUN, RUN_FORMAT, RUN_FORMAT_VERSION, result_file

MAPPED = "mapped"  # a split task's status in a within-task shard (its batches are stored)
REVIEW = "review"  # the key a re-run's record adds (what it reviewed and found)
_REVISION_OVERRIDE = "allow_revision_mismatch: loaded dataset revisions may differ from mteb's pins"


def now() -> str:
    """The time as run.json records it (UTC, ISO 8601, seconds)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Resolved:
    """The run's settings once resolved: model name and revision, device, the task list."""

    model: str
    revision: str | None
    batch_size: int
    precision: str
    seed: int
    device: str
    tasks: tuple[str, ...]
    benchmark: str | None

    @property
    def device_kind(self) -> str:
        """``cuda:0`` -> ``cuda``."""
        return self.device.split(":")[0]

    def to_json(self) -> dict[str, Any]:
        """run.json's ``resolved`` object."""
        return {
            "model": self.model,
            "revision": self.revision,
            "batch_size": self.batch_size,
            "precision": self.precision,
            "seed": self.seed,
            "device": self.device,
            "device_kind": self.device_kind,
            "tasks": list(self.tasks),
            "benchmark": self.benchmark,
        }


@dataclass(frozen=True)
class TaskInfo:
    """What mteb says of a task, as run.json lists it."""

    name: str
    type: str
    main_metric: str
    eval_splits: tuple[str, ...]
    mteb_task_seed: int | None


@dataclass(frozen=True)
class ModelRecord:
    """The model as loaded: its provenance (``model_provenance``: name, revisions, digest,
    files), where it came from, how long it took, its dtype and embedding settings."""

    provenance: Mapping[str, Any]
    source: str
    origin: str
    load_seconds: float
    dtype: str | None
    embedding: Mapping[str, Any]

    @property
    def digest(self) -> str | None:
        """The content digest of the model files (None when they were not found)."""
        value = self.provenance.get("digest")
        return str(value) if value else None

    def to_json(self) -> dict[str, Any]:
        """run.json's ``model`` object."""
        return {
            **self.provenance,
            "source": self.source,
            "origin": self.origin,
            "load_seconds": self.load_seconds,
            "dtype": self.dtype,
            "embedding": dict(self.embedding),
        }


@dataclass(frozen=True)
class TaskSummary:
    """One task's outcome as the record holds it."""

    name: str
    main_metric: str
    status: str
    main_score: float | None
    duration_seconds: float | None


class RunRecord:
    """run.json of one run; every change goes through a method, ``to_json`` gives the dict."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data
        self._by_name: dict[str, dict[str, Any]] = {t["name"]: t for t in data.get("tasks", [])}
        self._previous_tasks: dict[str, dict[str, Any]] = {}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunRecord:
        """A record from its JSON form (copied: the record owns its data)."""
        return cls(copy.deepcopy(dict(data)))

    @classmethod
    def load(cls, out: Path) -> RunRecord | None:
        """The record run folder ``out`` holds; None when it has none or it is unreadable."""
        try:
            data = json.loads((Path(out) / RUN).read_text())
        except (OSError, ValueError):
            return None
        return cls(data) if isinstance(data, dict) else None

    @classmethod
    def start(
        cls,
        opts: EvalOptions,
        resolved: Resolved,
        *,
        results: PurePosixPath,
        model_source: str,
        mteb_version: str,
        previous: RunRecord | None = None,
        shard: Mapping[str, Any] | None = None,
        code: Mapping[str, Any] | None = None,
    ) -> RunRecord:
        """The record of a run starting now, or resuming ``previous`` (its times and model)."""
        was = previous._data if previous is not None else {}
        data: dict[str, Any] = {
            "format": RUN_FORMAT,
            "format_version": RUN_FORMAT_VERSION,
            "kit_version": __version__,
            "mteb_version": mteb_version,
            "command": opts.command,
            "options": opts.to_record(),
            "resolved": resolved.to_json(),
            "overrides": [_REVISION_OVERRIDE] if opts.allow_revision_mismatch else [],
            "started_at": was.get("started_at") or now(),
            "resumed_at": [*was.get("resumed_at", []), *([now()] if previous else [])],
            "finished_at": None,
            "status": "running",
            "results_dir": results.as_posix(),
            "encode": {
                "batch_size": opts.batch_size,
                "device": resolved.device,
                "precision": opts.precision,
            },
            "seeds": {},
            "model": was.get("model"),
            "model_source": model_source,
            "hf_cache": opts.hf_cache,
            "tasks": [],
        }
        if shard is not None:
            data["shard"] = dict(shard)
        if opts.container is not None:
            data["container"] = opts.container
        if code is not None:
            data["code"] = dict(code)
        record = cls(data)
        record._previous_tasks = {t["name"]: t for t in was.get("tasks", [])}
        return record

    # -- reading ------------------------------------------------------------------------------

    @property
    def status(self) -> str:
        return str(self._data["status"])

    @property
    def resolved(self) -> Mapping[str, Any]:
        """The ``resolved`` settings (read-only view of a copy)."""
        return copy.deepcopy(self._data.get("resolved") or {})

    @property
    def shard_spec(self) -> str | None:
        """The spec of the shard this run is (``I/N``), None for an unsharded run."""
        return (self._data.get("shard") or {}).get("spec")

    @property
    def model_digest(self) -> str | None:
        """The digest of the model the record holds (a resumed run's: the one it started with)."""
        return (self._data.get("model") or {}).get("digest")

    def tasks(self) -> list[TaskSummary]:
        """Every task in order, with its status and score so far."""
        return [
            TaskSummary(
                t["name"],
                t["main_metric"],
                t["status"],
                t.get("main_score"),
                t.get("duration_seconds"),
            )
            for t in self._data["tasks"]
        ]

    def to_json(self) -> dict[str, Any]:
        """The record as run.json holds it (a copy)."""
        return copy.deepcopy(self._data)

    def save(self, out: Path) -> None:
        """Write the record to ``out``/run.json (atomically, canonical JSON)."""
        atomic_write_json(Path(out) / RUN, self._data)

    # -- the run's steps ----------------------------------------------------------------------

    def add_task(self, task: TaskInfo, done: bool) -> None:
        """List a task: a done one keeps what the previous record says of it, else pending."""
        entry = dict(self._previous_tasks.get(task.name, {})) if done else {}
        mapped = done and entry.get("status") == MAPPED
        entry.update(
            name=task.name,
            type=task.type,
            main_metric=task.main_metric,
            eval_splits=list(task.eval_splits),
            mteb_task_seed=task.mteb_task_seed,
            status=MAPPED if mapped else "complete" if done else "pending",
            result_file=result_file(self._data["results_dir"], task.name),
        )
        entry.setdefault("dataset", None)
        self._data["tasks"].append(entry)
        self._by_name[task.name] = entry

    def model_loaded(self, model: ModelRecord) -> None:
        """Record the loaded model; its dtype is an encode setting too."""
        self._data["model"] = model.to_json()
        self._data["encode"]["dtype"] = model.dtype

    def seeds_set(self, seeds: Mapping[str, int]) -> None:
        self._data["seeds"] = dict(seeds)

    def task_started(self, name: str) -> None:
        self._by_name[name].update(status="running", started_at=now())

    def task_dataset(self, name: str, provenance: Mapping[str, Any]) -> None:
        """The dataset revisions and files the task really loaded."""
        self._by_name[name]["dataset"] = dict(provenance)

    def task_prompts(self, name: str, prompts: Mapping[str, Any]) -> None:
        self._by_name[name]["prompts"] = dict(prompts)

    def was_mapped(self, name: str) -> bool:
        """Whether the record resumed holds ``name`` as mapped (a within-task shard's part)."""
        return self._previous_tasks.get(name, {}).get("status") == MAPPED

    def task_mapped(self, name: str, within: Mapping[str, Any], duration_seconds: float) -> None:
        """A split task's batches of this shard are computed and stored (no score here)."""
        entry = self._by_name[name]
        entry.update(status=MAPPED, within=dict(within), duration_seconds=duration_seconds,
                     finished_at=now())  # fmt: skip
        entry.pop("error", None)

    def task_predictions(self, name: str, block: Mapping[str, Any]) -> None:
        """What the run kept of the task's per-sample predictions (kit/evaluate/predictions.py)."""
        self._by_name[name]["predictions"] = dict(block)

    def task_failed(self, name: str, message: str) -> None:
        self._by_name[name].update(status="failed", error=message)

    def task_done(
        self, name: str, main_score: float, duration_seconds: float, evaluation_time: Any
    ) -> None:
        entry = self._by_name[name]
        entry.update(
            status="complete",
            main_score=main_score,
            duration_seconds=duration_seconds,
            evaluation_time=evaluation_time,
            finished_at=now(),
        )
        entry.pop("error", None)

    def _running(self) -> list[dict[str, Any]]:
        return [t for t in self._data.get("tasks", []) if t.get("status") == "running"]

    def interrupted(self, signal: str, at: str) -> str | None:
        """The run ended on a signal: its running task goes back to pending (the next run does
        it again). Returns that task's name."""
        running = self._running()
        task = running[0]["name"] if running else None
        self._data["status"] = "interrupted"
        self._data["interruption"] = {"signal": signal, "at": at, "task": task}
        for t in running:
            t["status"] = "pending"
            t.pop("error", None)
        self._data["finished_at"] = now()
        return task

    def failed(self, code: int | None = None, message: str | None = None) -> None:
        """The run ended on an error; a fault (``code``, ``message``) fails its running task."""
        self._data["status"] = "failed"
        if code is not None:
            self._data["fault"] = {"code": code, "message": message}
            for t in self._running():
                t["status"] = "failed"
                t["error"] = message
        self._data["finished_at"] = now()

    def finish(self) -> None:
        """Every task is complete."""
        self._data["status"] = "complete"
        self._data["finished_at"] = now()


def is_review(run: Mapping[str, Any]) -> bool:
    """Whether a run record is a re-run's (it says what it reviewed)."""
    return REVIEW in run


def attach_review(out: Path, review: Mapping[str, Any]) -> None:
    """Add to ``out``/run.json what the re-run in that folder reviewed and found."""
    path = Path(out) / RUN
    record = json.loads(path.read_text())
    record[REVIEW] = dict(review)
    atomic_write_json(path, record)
