"""`repro-kit evaluate` and `repro-kit prefetch`: parse options, run the core, print a summary."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from kit.cli.options import env_offline, go_offline, split_tasks
from kit.errors import ExitCode, KitError
from kit.evaluate.options import DEFAULT_MODEL, DEFAULT_TASKS, DEVICES, PRECISIONS, EvalOptions

FULL_BENCHMARK_HINT = (
    'Full benchmark: repro-kit evaluate MODEL --benchmark "MTEB(eng, v2)" (41 tasks, hours on a '
    "CPU; a GPU image is advised)."
)


@click.command()
@click.argument("model", required=False)
@click.option("--revision", help="Model revision (default: the one mteb pins).")
@click.option("--benchmark", help='An mteb benchmark, e.g. "MTEB(eng, v2)".')
@click.option("--tasks", help="Comma-separated mteb task names.")
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    help="Run folder (default: runs/<org__model>). Re-using it resumes.",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True)
@click.option(
    "--seed",
    type=int,
    default=42,
    show_default=True,
    help="Seed for Python, NumPy and torch (mteb's tasks keep their own seeds).",
)
@click.option("--offline", is_flag=True, help="Use only the local HF cache (HF_HUB_OFFLINE=1).")
@click.option("--overwrite", is_flag=True, help="Start afresh instead of resuming.")
@click.option(
    "--allow-revision-mismatch",
    is_flag=True,
    help="Accept a dataset revision other than mteb's pin (recorded in run.json).",
)
@click.option(
    "--shard",
    metavar="I/N|auto",
    help="Run only shard I of N (0-based), balanced by task cost; auto: from a Kubernetes "
    "Indexed Job (JOB_COMPLETION_INDEX) or a Slurm array (SLURM_ARRAY_TASK_ID).",
)
@click.option(
    "--shard-count",
    type=click.IntRange(min=1),
    help="N for --shard auto when the environment lacks it (Kubernetes: the Job's completions).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the final summary as JSON on stdout.")
def evaluate(
    model: str | None,
    revision: str | None,
    benchmark: str | None,
    tasks: str | None,
    output: Path | None,
    batch_size: int,
    device: str,
    precision: str,
    seed: int,
    offline: bool,
    overwrite: bool,
    allow_revision_mismatch: bool,
    shard: str | None,
    shard_count: int | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Evaluate MODEL on mteb tasks and record everything that explains the scores.

    With no MODEL and no tasks, runs the embedded default: all-MiniLM-L6-v2 on STSBenchmark.
    """
    task_names = split_tasks(tasks)
    if benchmark and task_names:
        raise KitError("give --benchmark or --tasks, not both", ExitCode.USAGE)
    if tasks is not None and not task_names:
        raise KitError("--tasks is empty", ExitCode.USAGE)
    default_job = model is None and not benchmark and not task_names
    from kit.evaluate.shard import resolve_spec

    shard_spec = resolve_spec(shard, shard_count, os.environ)
    offline = offline or env_offline()
    if offline:
        go_offline()
    from kit.evaluate.hfcache import use_writable_hf_home

    hf_view = use_writable_hf_home()  # before mteb/datasets read HF_HOME
    opts = EvalOptions(
        model=model or DEFAULT_MODEL,
        revision=revision,
        tasks=DEFAULT_TASKS if default_job else task_names,
        benchmark=benchmark,
        output=output,
        batch_size=batch_size,
        device=device,
        precision=precision,
        seed=seed,
        offline=offline,
        overwrite=overwrite,
        allow_revision_mismatch=allow_revision_mismatch,
        quiet=quiet or as_json,
        inner_progress=sys.stderr.isatty(),
        hf_cache=hf_view,
        command=["repro-kit", *sys.argv[1:]],
        shard=shard_spec,
    )
    from kit.cli.progress import TqdmReporter
    from kit.evaluate.runner import run_evaluation

    if default_job and not as_json:
        click.echo(f"repro-kit: default job: {DEFAULT_MODEL} on STSBenchmark", err=True)
    from kit.evaluate.faults import guard
    from kit.evaluate.runner import default_output

    with guard(opts.output or default_output(opts.model), opts.batch_size):
        summary = run_evaluation(opts, reporter=None if opts.quiet else TqdmReporter())
    rec = summary.record
    if as_json:
        click.echo(json.dumps(_summary_json(summary.output, rec), indent=2, sort_keys=True))
        return
    for t in rec["tasks"]:
        score = t.get("main_score")
        shown = f"{score:.6f}" if score is not None else "-"
        click.echo(f"{t['name']:<40} {t['main_metric']:<20} {shown}  ({t['status']})")
    click.echo(f"run folder: {summary.output}  (bundle it: repro-kit bundle {summary.output})")
    if default_job:
        click.echo(FULL_BENCHMARK_HINT)


def _summary_json(output: Path, rec: dict[str, Any]) -> dict[str, Any]:
    return {
        "output": str(output),
        "status": rec["status"],
        "model": rec["resolved"]["model"],
        "revision": rec["resolved"]["revision"],
        "tasks": {
            t["name"]: {
                "main_score": t.get("main_score"),
                "main_metric": t["main_metric"],
                "status": t["status"],
                "duration_seconds": t.get("duration_seconds"),
            }
            for t in rec["tasks"]
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
