"""Run an evaluation: plan, resume, run each task through mteb, record everything.

Layout of an output folder (mteb's own files are kept unchanged, so
``mteb.ResultCache(OUTPUT)`` loads them)::

    OUTPUT/run.json              the command, options, per-task status/score/timing, provenance
    OUTPUT/environment.json      hardware, software and settings
    OUTPUT/results/<org__model>/<revision>/<Task>.json, model_meta.json, run_settings.jsonl
    OUTPUT/predictions/<Task>.json.gz   mteb's per-sample predictions (unless --no-predictions)
    OUTPUT/.staging/             mteb's working cache while a task runs (removed when done)

A task's result file appears in ``results/`` only once the task is complete (atomic rename),
so a run killed at any point resumes without a half-written file.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from kit.errors import ExitCode, KitError
from kit.evaluate import faults
from kit.evaluate import mteb_adapter as mt
from kit.evaluate import predictions as pred
from kit.evaluate.datasets import check_faithful, dataset_provenance, record_dataset_loads
from kit.evaluate.model.encoder import record_prompts
from kit.evaluate.model.load import load_for_run
from kit.evaluate.model.new_model import python_entry
from kit.evaluate.model.source import ModelSource, resolve_source
from kit.evaluate.options import SCORE_AFFECTING, EvalOptions
from kit.evaluate.record import Resolved, RunRecord, TaskInfo
from kit.evaluate.shard.plan import check_same_shard
from kit.fsio import atomic_write_bytes, atomic_write_json
from kit.machine.environment import collect_environment
from kit.machine.git import code_state
from kit.runfolder import (
    ENVIRONMENT,
    KIT_FILES,
    MODEL_META,
    MTEB_ENTRY,
    PREDICTIONS,
    RESULTS,
    RUN,
    RUN_SETTINGS,
    STAGING,
    default_output,
    model_as_path,
    predictions_member,
    results_dir,
    staged_predictions,
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
    record: RunRecord

    @property
    def ok(self) -> bool:
        return self.record.status == "complete"


@dataclass(frozen=True)
class _Folders:
    """Where a run's files go: the run folder, its results folder, and staging."""

    out: Path
    results: PurePosixPath  # results/<org__name>/<revision>, relative to ``out``

    @property
    def final(self) -> Path:
        return self.out / self.results

    @property
    def staging(self) -> Path:
        return self.out / STAGING

    @property
    def staged(self) -> Path:
        return self.staging / self.results


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def prepare_output(out: Path, opts: EvalOptions, resolved: Resolved) -> RunRecord | None:
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
        for name in (RESULTS, STAGING, PREDICTIONS):
            shutil.rmtree(out / name, ignore_errors=True)
        return None

    previous = RunRecord.load(out) if (out / RUN).exists() else None
    if (out / RUN).exists() and previous is None:
        raise KitError(
            f"{out}/run.json is unreadable; pass --overwrite to start afresh", ExitCode.OUTPUT
        )
    other_models = [
        p.name
        for p in (out / RESULTS).glob("*")
        if p.is_dir() and p.name != model_as_path(resolved.model)
    ]
    if previous is not None:
        prev_opts, now = previous.resolved, resolved.to_json()
        diffs = [k for k in SCORE_AFFECTING if prev_opts.get(k) != now.get(k)]
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


def _publish(
    staged_dir: Path,
    final_dir: Path,
    task_name: str,
    predictions: pred.Collected | None = None,
    out: Path | None = None,
) -> None:
    """Move a finished task's files from staging to the results folder atomically.

    Its predictions member first, the task's own file last (its presence marks the task
    done); a signal waits until all are moved (``faults.atomic_step``).
    """
    with faults.atomic_step():
        if out is not None and predictions is not None and predictions.member is not None:
            member = out / predictions_member(task_name)
            member.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(member, predictions.member)
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
    tasks, shard = _select_tasks(opts)
    source = resolve_source(opts.model, opts.revision, opts.model_name, opts.offline)
    code = code_state(opts.code, opts.allow_dirty) if opts.code is not None else None
    resolved = _resolve(opts, source, mt.resolve_device(opts.device), tasks)
    out = Path(opts.output) if opts.output else default_output(source.name)
    previous = prepare_output(out, opts, resolved)
    check_same_shard(
        out, previous.shard_spec if previous is not None else None, previous is not None, shard
    )
    folders = _Folders(out, results_dir(source.name, source.revision))
    record = RunRecord.start(
        opts, resolved, results=folders.results, model_source=source.kind,
        mteb_version=mt.mteb_version(), previous=previous, shard=shard, code=code,
    )  # fmt: skip
    split = set((shard or {}).get("split") or ())
    done = [
        record.was_mapped(t.metadata.name)
        if t.metadata.name in split
        else mt.result_complete(folders.final / f"{t.metadata.name}.json", t)
        for t in tasks
    ]
    for task, task_done in zip(tasks, done, strict=True):
        record.add_task(_task_info(task), task_done)
    atomic_write_json(out / ENVIRONMENT, environment())
    record.save(out)
    pending = [t for t, task_done in zip(tasks, done, strict=True) if not task_done]
    reporter.start(len(tasks), len(tasks) - len(pending))
    for t in record.tasks():
        if t.status == "complete":
            reporter.task_finished(t.name, t.main_score, skipped=True)
    try:
        model = None
        if pending:
            model = _load_model(source, opts, resolved.device, record, out, wrap_model)
        record.seeds_set(mt.set_seeds(opts.seed))
        _run_pending(pending, model, record, opts, folders, reporter, split)
    except BaseException as exc:
        faults.record_fault(record, exc)
        record.save(out)
        raise
    finally:
        reporter.close()
    record.finish()
    record.save(out)
    shutil.rmtree(folders.staging, ignore_errors=True)
    return RunSummary(out, record)


def _select_tasks(opts: EvalOptions) -> tuple[list[Any], dict[str, Any] | None]:
    """mteb's tasks for the options; a shard keeps its own (with the shard's record)."""
    tasks = mt.resolve_tasks(opts.tasks or (), opts.benchmark)
    if not tasks:
        raise KitError("no tasks to run", ExitCode.USAGE)
    if opts.shard is None:
        return tasks, None
    from kit.evaluate.shard.cost import task_costs
    from kit.evaluate.shard.plan import plan

    names = [t.metadata.name for t in tasks]
    shard = plan(names, task_costs(tasks), opts.shard, within=opts.within_tasks)
    if opts.within_tasks:
        shard["store"] = str(opts.store)
    return [t for t in tasks if t.metadata.name in shard["tasks"]], shard


def _resolve(opts: EvalOptions, source: ModelSource, device: str, tasks: list[Any]) -> Resolved:
    return Resolved(
        model=source.name,
        revision=source.revision,
        batch_size=opts.batch_size,
        precision=opts.precision,
        seed=opts.seed,
        device=device,
        tasks=tuple(t.metadata.name for t in tasks),
        benchmark=opts.benchmark,
    )


def _task_info(task: Any) -> TaskInfo:
    return TaskInfo(
        name=task.metadata.name,
        type=task.metadata.type,
        main_metric=task.metadata.main_score,
        eval_splits=tuple(task.eval_splits),
        mteb_task_seed=getattr(task, "seed", None),
    )


def _load_model(
    source: ModelSource,
    opts: EvalOptions,
    device: str,
    record: RunRecord,
    out: Path,
    wrap_model: Callable[[Any], Any] | None,
) -> Any:
    """Load the model and record it; a model mteb does not know gets its registry entry."""
    faults.checkpoint("model-load")
    model, loaded = load_for_run(source, opts, device, record.model_digest)
    record.model_loaded(loaded)
    if source.kind != "registry":  # the entry to propose to mteb's model registry
        atomic_write_bytes(out / MTEB_ENTRY, python_entry(model.mteb_model_meta).encode())
    return wrap_model(model) if wrap_model is not None else model


def _run_pending(
    pending: list[Any],
    model: Any,
    record: RunRecord,
    opts: EvalOptions,
    folders: _Folders,
    reporter: Reporter,
    split: set[str],
) -> None:
    """Run each pending task; mteb failing in one does not stop the others (README, "Faults").

    A split task (``--within-tasks``) is mapped: this shard's batches of it are stored.
    """
    encode_kwargs = {
        "batch_size": opts.batch_size,
        "show_progress_bar": opts.inner_progress and not opts.quiet,
    }
    failed = []
    mapper = (
        _mapper(model, record, opts) if any(t.metadata.name in split for t in pending) else None
    )
    try:
        for task in pending:
            try:
                mine = mapper if task.metadata.name in split else None
                _run_one(task, model, record, opts, folders, encode_kwargs, reporter, mine)
            except KitError as e:
                if e.code != ExitCode.EVALUATION_FAILED:
                    raise
                failed.append(e.message)
            record.save(folders.out)
    finally:
        if mapper is not None:
            mapper.close()
    if failed:
        raise KitError(
            f"{len(failed)} of {len(pending)} task(s) failed, the others are recorded in "
            f"{folders.out} (run.json lists why): {'; '.join(failed)}",
            ExitCode.EVALUATION_FAILED,
        )


def _mapper(model: Any, record: RunRecord, opts: EvalOptions) -> Any:
    """The within-task shard's encoder and store (kit/evaluate/shard/mapreduce.py)."""
    from kit.evaluate.shard.mapreduce import Mapper

    if opts.shard is None or opts.store is None:
        raise KitError("within-task sharding needs --shard and --store", ExitCode.USAGE)
    return Mapper(model, record.to_json(), opts.shard, opts.store)


def _run_one(
    task: Any,
    model: Any,
    record: RunRecord,
    opts: EvalOptions,
    folders: _Folders,
    encode_kwargs: dict[str, Any],
    reporter: Reporter,
    mapper: Any = None,
) -> None:
    name = task.metadata.name
    reporter.task_started(name)
    record.task_started(name)
    t0 = time.perf_counter()
    mt.set_seeds(opts.seed)
    ds = task.metadata.dataset
    try:
        with record_dataset_loads() as loads:
            mt.load_task_data(task, opts.offline)
        record.task_dataset(
            name,
            dataset_provenance(
                name, ds["path"], ds.get("revision"), loads.loads, opts.allow_revision_mismatch
            ),
        )
        check_faithful(task)
        _clean_staging(folders.staged, name)
        keep = opts.predictions and mapper is None  # a mapped task has no predictions here
        pred_dir = folders.out / staged_predictions(name) if keep else None
        if pred_dir is not None and not (folders.staged / f"{name}.json").exists():
            shutil.rmtree(pred_dir, ignore_errors=True)  # mteb runs it afresh: no earlier half
        with record_prompts(model) as prompts:
            if mapper is None:
                result = mt.run_task(model, task, folders.staging, encode_kwargs, pred_dir)
            else:
                mapped = mapper.map_task(task, folders.staging, encode_kwargs)
        record.task_prompts(name, prompts.to_json())
        if mapper is None:
            kept = pred.collect_for_task(
                task, pred_dir, result, opts.predictions_top_k, loads.loads
            )
    except KitError as e:
        record.task_failed(name, e.message)
        raise
    finally:
        task.unload_data()
    if mapper is not None:
        with faults.atomic_step():
            mapper.write_index(folders.out)
            record.task_mapped(name, mapped, round(time.perf_counter() - t0, 3))
        reporter.task_finished(name, None, skipped=False)
        return
    with faults.atomic_step():  # a signal waits until the task is published and recorded
        _publish(folders.staged, folders.final, name, kept, folders.out)
        record.task_predictions(name, kept.block)
        score = mt.file_main_score(folders.final / f"{name}.json")
        record.task_done(
            name,
            main_score=score,
            duration_seconds=round(time.perf_counter() - t0, 3),
            evaluation_time=result.evaluation_time,
        )
    reporter.task_finished(name, score, skipped=False)
