"""Command line: parse options, call the core, print results. Nothing else lives here."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from kit import __version__
from kit.errors import ExitCode, KitError
from kit.options import DEFAULT_MODEL, DEFAULT_TASKS, DEVICES, PRECISIONS, EvalOptions

FULL_BENCHMARK_HINT = (
    'Full benchmark: repro-kit evaluate MODEL --benchmark "MTEB(eng, v2)" (41 tasks, hours on a '
    "CPU; a GPU image is advised)."
)


def _fail(message: str, code: int) -> None:
    click.echo(f"repro-kit: error: {message}", err=True)
    sys.exit(int(code))


def main() -> None:
    """Entry point: map KitError to its exit code, never a traceback for user mistakes."""
    try:
        cli.main(standalone_mode=False, prog_name="repro-kit")
    except KitError as e:
        _fail(e.message, e.code)
    except click.exceptions.Abort:
        _fail("aborted", ExitCode.USAGE)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted; re-run the same command to resume", 130)
    except Exception as e:  # a bug in the kit: one line, the traceback only on request
        if os.environ.get("REPRO_KIT_DEBUG"):
            raise
        _fail(
            f"internal error: {type(e).__name__}: {e} (set REPRO_KIT_DEBUG=1 for a traceback)",
            ExitCode.INTERNAL,
        )
    sys.exit(0)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="repro-kit")
def cli() -> None:
    """Run MTEB reproducibly, bundle the evidence, and verify others' bundles."""


def _split_tasks(value: str | None) -> tuple[str, ...]:
    return tuple(t.strip() for t in (value or "").split(",") if t.strip())


@cli.command()
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
    quiet: bool,
    as_json: bool,
) -> None:
    """Evaluate MODEL on mteb tasks and record everything that explains the scores.

    With no MODEL and no tasks, runs the embedded default: all-MiniLM-L6-v2 on STSBenchmark.
    """
    task_names = _split_tasks(tasks)
    if benchmark and task_names:
        raise KitError("give --benchmark or --tasks, not both", ExitCode.USAGE)
    if tasks is not None and not task_names:
        raise KitError("--tasks is empty", ExitCode.USAGE)
    default_job = model is None and not benchmark and not task_names
    offline = offline or os.environ.get("HF_HUB_OFFLINE", "") in {"1", "true", "True"}
    if offline:
        for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
            os.environ[var] = "1"
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
        command=["repro-kit", *sys.argv[1:]],
    )
    from kit.progress import TqdmReporter
    from kit.runner import run_evaluation

    if default_job and not as_json:
        click.echo(f"repro-kit: default job: {DEFAULT_MODEL} on STSBenchmark", err=True)
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


def _summary_json(output: Path, rec: dict) -> dict:
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
