"""Run an evaluation: plan, resume, run each task through mteb, record everything.

Layout of an output folder (mteb's own files are kept unchanged, so
``mteb.ResultCache(OUTPUT)`` loads them)::

    OUTPUT/run.json              the command, options, per-task status/score/timing, provenance
    OUTPUT/environment.json      hardware, software and settings
    OUTPUT/results/<org__model>/<revision>/<Task>.json, model_meta.json, run_settings.jsonl
    OUTPUT/.staging/             mteb's working cache while a task runs (removed when done)

A task's result file appears in ``results/`` only once the task is complete (atomic rename),
so a run killed at any point resumes without a half-written file.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from kit import __version__
from kit.errors import ExitCode, KitError
from kit.evaluate import faults
from kit.evaluate import mteb_adapter as mt
from kit.evaluate.datasets import check_faithful, dataset_provenance, record_dataset_loads
from kit.evaluate.model.encoder import record_prompts
from kit.evaluate.model.load import load_for_run
from kit.evaluate.model.new_model import python_entry
from kit.evaluate.model.source import resolve_source
from kit.evaluate.options import SCORE_AFFECTING, EvalOptions
from kit.fsio import atomic_write_bytes, atomic_write_json
from kit.machine.environment import collect_environment
from kit.machine.git import code_state
from kit.runfolder import (
    ENVIRONMENT,
    KIT_FILES,
    MODEL_META,
    MTEB_ENTRY,
    RESULTS,
    RUN,
    RUN_FORMAT,
    RUN_FORMAT_VERSION,
    RUN_SETTINGS,
    STAGING,
    default_output,
    model_as_path,
    result_file,
    results_dir,
)


class Reporter(Protocol):
    """Progress callbacks; the CLI draws bars, tests pass a silent one."""

    def start(self, total: int, done: int) -> None: ...
    def task_started(self, name: str) -> None: ...
    def task_finished(self, name: str, score: float | None, skipped: bool) -> None: ...
    def close(self) -> None: ...


class SilentReporter:
    def start(self, total: int, done: int) -> None: ...
    def task_started(self, name: str) -> None: ...
    def task_finished(self, name: str, score: float | None, skipped: bool) -> None: ...
    def close(self) -> None: ...


@dataclass
class RunSummary:
    output: Path
    record: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.record["status"] == "complete"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def prepare_output(out: Path, opts: EvalOptions, resolved: dict[str, Any]) -> dict[str, Any] | None:
    """Check the output folder; return the previous run record to resume from, if any."""
    if out.exists() and not out.is_dir():
        raise KitError(f"output {out} exists and is not a folder", ExitCode.OUTPUT)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".repro-kit-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise KitError(
            f"output folder {out} is not writable: {e.strerror or e}", ExitCode.OUTPUT
        ) from None

    if opts.overwrite:
        for name in KIT_FILES:
            (out / name).unlink(missing_ok=True)
        for name in (RESULTS, STAGING):
            shutil.rmtree(out / name, ignore_errors=True)
        return None

    previous = _read_json(out / RUN) if (out / RUN).exists() else None
    if (out / RUN).exists() and previous is None:
        raise KitError(
            f"{out}/run.json is unreadable; pass --overwrite to start afresh", ExitCode.OUTPUT
        )
    other_models = [
        p.name
        for p in (out / RESULTS).glob("*")
        if p.is_dir() and p.name != model_as_path(resolved["model"])
    ]
    if previous is not None:
        prev_opts = previous.get("resolved", {})
        diffs = [k for k in SCORE_AFFECTING if prev_opts.get(k) != resolved.get(k)]
        if "model" in diffs or "revision" in diffs:
            raise KitError(
                f"{out} holds a run of {prev_opts.get('model')}@{prev_opts.get('revision')}; "
                "use another --output or --overwrite",
                ExitCode.OUTPUT,
            )
        if diffs:
            raise KitError(
                f"{out} holds a run made with other settings ({', '.join(diffs)}); resuming would "
                "mix results: use the same options, another --output, or --overwrite",
                ExitCode.OUTPUT,
            )
    elif other_models:
        raise KitError(
            f"{out} holds results of another model ({other_models[0]}); use another --output",
            ExitCode.OUTPUT,
        )
    return previous


def _clean_staging(staged_dir: Path, task_name: str) -> None:
    """Repair what a killed or disk-full run left half-written in staging before a task runs.

    An unreadable result file or model_meta.json is dropped (mteb writes it again); a
    run_settings.jsonl keeps only its whole lines (a cut last line is dropped, the earlier
    tasks' lines stay: the published copy is replaced by the staged one).
    """
    for name in (f"{task_name}.json", MODEL_META):
        path = staged_dir / name
        if path.exists() and _read_json(path) is None:
            path.unlink()
    settings = staged_dir / RUN_SETTINGS
    if settings.exists():
        lines = settings.read_bytes().splitlines(keepends=True)
        good = [line for line in lines if line.endswith(b"\n") and _json_line(line)]
        if good != lines:
            atomic_write_bytes(settings, b"".join(good))


def _json_line(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _publish(staged_dir: Path, final_dir: Path, task_name: str) -> None:
    """Move a finished task's files from staging to the results folder atomically.

    The task's own file goes last (its presence marks the task done); a signal waits until
    all are moved (``faults.atomic_step``).
    """
    with faults.atomic_step():
        final_dir.mkdir(parents=True, exist_ok=True)
        for name in (MODEL_META, RUN_SETTINGS, f"{task_name}.json"):
            src = staged_dir / name
            if src.exists():
                atomic_write_bytes(final_dir / name, src.read_bytes())
            faults.checkpoint("publish")


def run_evaluation(
    opts: EvalOptions,
    reporter: Reporter | None = None,
    environment: Callable[[], dict[str, Any]] = collect_environment,
    wrap_model: Callable[[Any], Any] | None = None,
) -> RunSummary:
    """Evaluate ``opts.model`` on the requested tasks, resuming what a folder already holds.

    ``wrap_model`` may wrap the loaded model (the re-run's embedding cache, kit/rerun/embcache.py).
    """
    reporter = reporter or SilentReporter()
    mt.quiet_libraries()
    tasks = mt.resolve_tasks(opts.tasks or (), opts.benchmark)
    if not tasks:
        raise KitError("no tasks to run", ExitCode.USAGE)
    shard = None
    if opts.shard is not None:  # keep only this shard's tasks (kit/evaluate/shard/)
        from kit.evaluate.shard.cost import task_costs
        from kit.evaluate.shard.plan import plan

        shard = plan([t.metadata.name for t in tasks], task_costs(tasks), opts.shard)
        tasks = [t for t in tasks if t.metadata.name in shard["tasks"]]
    source = resolve_source(opts.model, opts.revision, opts.model_name, opts.offline)
    code = code_state(opts.code, opts.allow_dirty) if opts.code is not None else None
    device = mt.resolve_device(opts.device)
    resolved = {
        "model": source.name,
        "revision": source.revision,
        "batch_size": opts.batch_size,
        "precision": opts.precision,
        "seed": opts.seed,
        "device": device,
        "device_kind": device.split(":")[0],
        "tasks": [t.metadata.name for t in tasks],
        "benchmark": opts.benchmark,
    }
    out = Path(opts.output) if opts.output else default_output(source.name)
    previous = prepare_output(out, opts, resolved)
    _check_same_shard(out, previous, shard)
    results_rel = results_dir(source.name, source.revision)
    final_dir = out / results_rel
    staging = out / STAGING
    staged_dir = staging / results_rel

    prev_tasks = {t["name"]: t for t in (previous or {}).get("tasks", [])}
    record: dict[str, Any] = {
        "format": RUN_FORMAT,
        "format_version": RUN_FORMAT_VERSION,
        "kit_version": __version__,
        "mteb_version": mt.mteb_version(),
        "command": opts.command,
        "options": opts.to_record(),
        "resolved": resolved,
        "overrides": (
            ["allow_revision_mismatch: loaded dataset revisions may differ from mteb's pins"]
            if opts.allow_revision_mismatch
            else []
        ),
        "started_at": (previous or {}).get("started_at") or _now(),
        "resumed_at": [*(previous or {}).get("resumed_at", []), *([_now()] if previous else [])],
        "finished_at": None,
        "status": "running",
        "results_dir": results_rel.as_posix(),
        "encode": {"batch_size": opts.batch_size, "device": device, "precision": opts.precision},
        "seeds": {},
        "model": (previous or {}).get("model"),
        "model_source": source.kind,
        "hf_cache": opts.hf_cache,
        "tasks": [],
    }
    if shard is not None:
        record["shard"] = shard
    if opts.container is not None:
        record["container"] = opts.container
    if code is not None:
        record["code"] = code
    for task in tasks:
        name = task.metadata.name
        done = mt.result_complete(final_dir / f"{name}.json", task)
        entry = dict(prev_tasks.get(name, {})) if done else {}
        entry.update(
            name=name,
            type=task.metadata.type,
            main_metric=task.metadata.main_score,
            eval_splits=list(task.eval_splits),
            mteb_task_seed=getattr(task, "seed", None),
            status="complete" if done else "pending",
            result_file=result_file(results_rel, name),
        )
        entry.setdefault("dataset", None)
        record["tasks"].append(entry)

    atomic_write_json(out / ENVIRONMENT, environment())
    atomic_write_json(out / RUN, record)

    pending = [t for t, e in zip(tasks, record["tasks"], strict=True) if e["status"] != "complete"]
    reporter.start(len(tasks), len(tasks) - len(pending))
    for entry in record["tasks"]:
        if entry["status"] == "complete":
            reporter.task_finished(entry["name"], entry.get("main_score"), skipped=True)

    try:
        model = None
        if pending:
            faults.checkpoint("model-load")
            model, record["model"] = load_for_run(
                source, opts, device, (previous or {}).get("model")
            )
            record["encode"]["dtype"] = record["model"]["dtype"]
            if source.kind != "registry":  # the entry to propose to mteb's model registry
                entry_text = python_entry(model.mteb_model_meta).encode()
                atomic_write_bytes(out / MTEB_ENTRY, entry_text)
            if wrap_model is not None:
                model = wrap_model(model)
        record["seeds"] = mt.set_seeds(opts.seed)
        encode_kwargs = {
            "batch_size": opts.batch_size,
            "show_progress_bar": opts.inner_progress and not opts.quiet,
        }
        by_name = {e["name"]: e for e in record["tasks"]}
        failed = []  # mteb failed in these tasks; the others go on (README, "Faults")
        for task in pending:
            entry = by_name[task.metadata.name]
            try:
                _run_one(
                    task, entry, model, opts, staging, staged_dir, final_dir, encode_kwargs,
                    reporter,
                )  # fmt: skip
            except KitError as e:
                if e.code != ExitCode.EVALUATION_FAILED:
                    raise
                failed.append(e.message)
            atomic_write_json(out / RUN, record)
        if failed:
            raise KitError(
                f"{len(failed)} of {len(pending)} task(s) failed, the others are recorded in "
                f"{out} (run.json lists why): {'; '.join(failed)}",
                ExitCode.EVALUATION_FAILED,
            )
    except BaseException as exc:
        faults.record_fault(record, exc)
        record["finished_at"] = _now()
        atomic_write_json(out / RUN, record)
        raise
    finally:
        reporter.close()

    record["status"] = "complete"
    record["finished_at"] = _now()
    atomic_write_json(out / RUN, record)
    shutil.rmtree(staging, ignore_errors=True)
    return RunSummary(out, record)


def _check_same_shard(out: Path, previous: dict[str, Any] | None, shard: dict | None) -> None:
    """Resuming must keep the shard (a folder holds one shard's run)."""
    was = ((previous or {}).get("shard") or {}).get("spec")
    now = (shard or {}).get("spec")
    if previous is not None and was != now:
        raise KitError(
            f"{out} holds {f'shard {was}' if was else 'an unsharded run'}, not "
            f"{f'shard {now}' if now else 'an unsharded run'}; use another --output or --overwrite",
            ExitCode.OUTPUT,
        )


def _run_one(
    task: Any,
    entry: dict[str, Any],
    model: Any,
    opts: EvalOptions,
    staging: Path,
    staged_dir: Path,
    final_dir: Path,
    encode_kwargs: dict[str, Any],
    reporter: Reporter,
) -> None:
    name = task.metadata.name
    reporter.task_started(name)
    entry["status"] = "running"
    entry["started_at"] = _now()
    t0 = time.perf_counter()
    mt.set_seeds(opts.seed)
    ds = task.metadata.dataset
    try:
        with record_dataset_loads() as loads:
            mt.load_task_data(task, opts.offline)
        entry["dataset"] = dataset_provenance(
            name, ds["path"], ds.get("revision"), loads.loads, opts.allow_revision_mismatch
        )
        check_faithful(task)
        _clean_staging(staged_dir, name)
        with record_prompts(model) as prompts:
            result = mt.run_task(model, task, staging, encode_kwargs)
        entry["prompts"] = prompts.to_json()
    except KitError as e:
        entry["status"] = "failed"
        entry["error"] = e.message
        raise
    finally:
        task.unload_data()
    with faults.atomic_step():  # a signal waits until the task is published and recorded
        _publish(staged_dir, final_dir, name)
        entry.update(
            status="complete",
            main_score=mt.file_main_score(final_dir / f"{name}.json"),
            duration_seconds=round(time.perf_counter() - t0, 3),
            evaluation_time=result.evaluation_time,
            finished_at=_now(),
        )
    entry.pop("error", None)
    reporter.task_finished(name, entry["main_score"], skipped=False)
