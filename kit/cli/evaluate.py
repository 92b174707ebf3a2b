"""`repro-kit evaluate` and `repro-kit prefetch`: parse options, run the core, print a summary."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kit.cli.evaluate_options import (
    BundleChoice,
    ModelChoice,
    NewModelInfo,
    RunChoice,
    ShardChoice,
    TaskChoice,
    TaskSelection,
    bundle_options,
    model_options,
    new_model_options,
    run_options,
    shard_options,
    task_options,
)
from kit.cli.options import env_offline, go_offline, print_next_step, split_tasks
from kit.errors import ExitCode, KitError
from kit.evaluate.options import DEFAULT_MODEL, DEFAULT_TASKS, EvalOptions

if TYPE_CHECKING:
    from kit.evaluate.record import RunRecord

FULL_BENCHMARK_HINT = (
    'Full benchmark: repro-kit evaluate MODEL --benchmark "MTEB(eng, v2)" (41 tasks, hours on a '
    "CPU; a GPU image is advised)."
)


@click.command()
@model_options
@task_options
@run_options
@shard_options
@new_model_options
@bundle_options
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the final summary as JSON on stdout.")
def evaluate(
    model: ModelChoice,
    tasks: TaskChoice,
    run: RunChoice,
    shard: ShardChoice,
    new_model: NewModelInfo,
    bundle: BundleChoice,
    quiet: bool,
    as_json: bool,
) -> None:
    """Evaluate MODEL on mteb tasks and record everything that explains the scores.

    MODEL is an mteb-registered name, a local model folder (./my-model, with --model-name
    ORG/NAME) or an unregistered hub id. With no MODEL and no tasks, runs the embedded
    default: all-MiniLM-L6-v2 on STSBenchmark. Ends by writing the run's bundle (signed with
    --sign or $REPRO_KIT_SIGNING_KEY) and verifying it.
    """
    selection = tasks.select(model.model)
    opts = _eval_options(model, selection, run, shard, new_model, quiet or as_json)
    if selection.default_job and not as_json:
        click.echo(f"repro-kit: default job: {DEFAULT_MODEL} on STSBenchmark", err=True)
    out, rec, failure = _run(opts, new_model.model_name, partial_ok=bundle.write)
    sub, sign_error = None, bundle.sign_error
    if bundle.write:
        from kit.publish.submission import submit_run

        sub, failed_signing = submit_run(out, bundle.path, bundle.signer, bundle.allow_unsigned)
        sign_error = sign_error or failed_signing
    if as_json:
        click.echo(json.dumps(_summary_json(out, rec, sub), indent=2, sort_keys=True))
    else:
        _print_summary(out, rec, sub, selection.default_job, bundle.key)
    if failure is not None:
        raise failure
    if sign_error is not None:
        from kit.publish.submission import unsigned_hint

        raise KitError(
            f"{sign_error}; the bundle was written unsigned (--allow-unsigned): "
            f"{unsigned_hint(Path(sub.path) if sub else out)}",
            ExitCode.KEY_ERROR,
        )


def _eval_options(
    model: ModelChoice,
    selection: TaskSelection,
    run: RunChoice,
    shard_choice: ShardChoice,
    new_model: NewModelInfo,
    quiet: bool,
) -> EvalOptions:
    """The core's options; goes offline and views a read-only HF cache first (before mteb and
    datasets read HF_HOME)."""
    shard = shard_choice.spec(os.environ)
    offline = run.offline or env_offline()
    if offline:
        go_offline()
    from kit.machine.hfcache import use_writable_hf_home

    hf_view = use_writable_hf_home()  # before mteb/datasets read HF_HOME
    return EvalOptions(
        model=model.model or DEFAULT_MODEL,
        revision=model.revision,
        tasks=selection.tasks,
        benchmark=selection.benchmark,
        output=run.output,
        batch_size=run.batch_size,
        device=run.device,
        precision=run.precision,
        seed=run.seed,
        offline=offline,
        overwrite=run.overwrite,
        allow_revision_mismatch=run.allow_revision_mismatch,
        predictions=not run.no_predictions,
        predictions_top_k=run.predictions_top_k,
        quiet=quiet,
        inner_progress=sys.stderr.isatty(),
        hf_cache=hf_view,
        command=["repro-kit", *sys.argv[1:]],
        shard=shard,
        within_tasks=shard is not None and shard_choice.within_tasks,
        store=shard_choice.store.absolute() if shard_choice.store else None,
        model_name=new_model.model_name,
        code=new_model.code,
        allow_dirty=new_model.allow_dirty,
        release_date=new_model.release_date,
        training_datasets=new_model.training_datasets,
        container=_container_record(),
    )


def _run(
    opts: EvalOptions, model_name: str | None, partial_ok: bool
) -> tuple[Path, RunRecord, KitError | None]:
    """Run the evaluation; with ``partial_ok``, a run where a task failed (the others ran) is
    returned with its error, to be bundled as partial."""
    from kit.cli.progress import TqdmReporter
    from kit.evaluate.faults import guard
    from kit.evaluate.record import RunRecord
    from kit.evaluate.runner import run_evaluation
    from kit.runfolder import default_output

    out = Path(opts.output) if opts.output else default_output(model_name or opts.model)
    try:
        with guard(out, opts.batch_size):
            summary = run_evaluation(opts, reporter=None if opts.quiet else TqdmReporter())
        return summary.output, summary.record, None
    except KitError as e:  # a task failed, the others ran: still bundle (partial)
        rec = RunRecord.load(out) if e.code == ExitCode.EVALUATION_FAILED and partial_ok else None
        if rec is None:
            raise
        return out, rec, e


def _container_record() -> dict[str, Any] | None:
    """The image record `container evaluate` passes in (it is the launcher's to say)."""
    from kit.container.launch import CONTAINER_RECORD_ENV

    text = os.environ.get(CONTAINER_RECORD_ENV)
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        raise KitError(f"${CONTAINER_RECORD_ENV} is not JSON", ExitCode.USAGE) from None
    return value if isinstance(value, dict) else None


def _print_summary(
    out: Path, rec: RunRecord, sub: Any, default_job: bool, key: Path | None = None
) -> None:
    from kit.runfolder import host_paths, shown_path

    host = host_paths(os.environ)  # in a container: the paths as the host sees them
    for t in rec.tasks():
        shown = f"{t.main_score:.6f}" if t.main_score is not None else "-"
        click.echo(f"{t.name:<40} {t.main_metric:<20} {shown}  ({t.status})")
    click.echo(f"run folder: {shown_path(out, host)}")
    if sub is None:
        where = shown_path(out, host)
        click.echo(f"bundle it: repro-kit bundle {where} -o {where}.tar.gz --sign KEY")
    else:
        who = f"signed by {sub.fingerprint}" if sub.signed else "UNSIGNED"
        part = f", PARTIAL ({', '.join(sub.partial)} not complete)" if sub.partial else ""
        click.echo(f"bundle: {shown_path(sub.path, host)} ({who}{part}; verified)")
        click.echo(f"sha256: {sub.sha256}")
        if sub.partial:
            click.echo("next: re-run the same command to finish it (the run resumes)")
        else:
            print_next_step(Path(sub.path), sub.public_key if sub.signed else None, key)
    if default_job:
        click.echo(FULL_BENCHMARK_HINT)


def _summary_json(output: Path, rec: RunRecord, sub: Any = None) -> dict[str, Any]:
    return {
        "bundle": None
        if sub is None
        else {
            "path": sub.path,
            "sha256": sub.sha256,
            "signed": sub.signed,
            "fingerprint": sub.fingerprint,
            "partial": list(sub.partial),
        },
        "output": str(output),
        "status": rec.status,
        "model": rec.resolved["model"],
        "revision": rec.resolved["revision"],
        "tasks": {
            t.name: {
                "main_score": t.main_score,
                "main_metric": t.main_metric,
                "status": t.status,
                "duration_seconds": t.duration_seconds,
            }
            for t in rec.tasks()
        },
    }


@click.command()
@click.argument("model", required=False)
@click.option("--revision")
@click.option("--benchmark")
@click.option("--tasks")
def prefetch(
    model: str | None, revision: str | None, benchmark: str | None, tasks: str | None
) -> None:
    """Fill the HF cache with what an offline or --network none run needs, and list it."""
    from kit.evaluate.prefetch import prefetch as do_prefetch

    task_names = split_tasks(tasks)
    if benchmark and task_names:
        raise KitError("give --benchmark or --tasks, not both", ExitCode.USAGE)
    if not benchmark and not task_names and model is None:
        task_names = DEFAULT_TASKS
    fetched = do_prefetch(model or DEFAULT_MODEL, revision, task_names, benchmark)
    for item in fetched:
        click.echo(f"{item['kind']:<8} {item['name']:<45} {item['revision']}")
