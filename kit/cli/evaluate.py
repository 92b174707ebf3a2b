"""`repro-kit evaluate` and `repro-kit prefetch`: parse options, run the core, print a summary."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from kit.cli.options import SIGNING_KEY_ENV, env_offline, go_offline, make_signer, split_tasks
from kit.errors import ExitCode, KitError
from kit.evaluate.options import DEFAULT_MODEL, DEFAULT_TASKS, DEVICES, PRECISIONS, EvalOptions

SIGN_HELP_EVAL = (
    "Sign the bundle with this SSH key: a private key file, or a .pub whose key ssh-agent "
    f"holds (default: ${SIGNING_KEY_ENV})."
)
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
@click.option(
    "--model-name",
    metavar="ORG/NAME",
    help="Name of a local model folder in results layouts (required unless its card names it).",
)
@click.option(
    "--code",
    type=click.Path(path_type=Path),
    help="Git repository of the training code: remotes, commit, branch, dirty state recorded.",
)
@click.option(
    "--allow-dirty", is_flag=True, help="Accept uncommitted changes in --code (recorded)."
)
@click.option(
    "--release-date", metavar="YYYY-MM-DD", help="A new model's release date (model_meta)."
)
@click.option(
    "--training-datasets",
    metavar="TASK,...",
    help="mteb task names a new model was trained on (model_meta; zero-shot marking).",
)
@click.option(
    "--bundle",
    "bundle_path",
    type=click.Path(path_type=Path),
    help="Where to write the signed bundle (default: <output>.tar.gz beside the run folder).",
)
@click.option("--no-bundle", is_flag=True, help="Stop at the run folder (bundle it later).")
@click.option("--sign", "key", metavar="KEY", type=click.Path(path_type=Path), help=SIGN_HELP_EVAL)
@click.option("--passphrase-env", metavar="VAR", help="Read the key's passphrase from VAR.")
@click.option("--no-sign", is_flag=True, help=f"Do not sign, even if {SIGNING_KEY_ENV} is set.")
@click.option(
    "--allow-unsigned",
    is_flag=True,
    help="If signing fails, still write the bundle, unsigned (exit 25 all the same).",
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
    model_name: str | None,
    code: Path | None,
    allow_dirty: bool,
    release_date: str | None,
    training_datasets: str | None,
    bundle_path: Path | None,
    no_bundle: bool,
    key: Path | None,
    passphrase_env: str | None,
    no_sign: bool,
    allow_unsigned: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Evaluate MODEL on mteb tasks and record everything that explains the scores.

    MODEL is an mteb-registered name, a local model folder (./my-model, with --model-name
    ORG/NAME) or an unregistered hub id. With no MODEL and no tasks, runs the embedded
    default: all-MiniLM-L6-v2 on STSBenchmark. Ends by writing the run's bundle (signed with
    --sign or $REPRO_KIT_SIGNING_KEY) and verifying it.
    """
    if no_sign and key is not None:
        raise KitError("give --sign KEY or --no-sign, not both", ExitCode.USAGE)
    if no_bundle and (key is not None or bundle_path is not None):
        raise KitError(
            "--no-bundle: nothing to sign or write (drop --sign/--bundle)", ExitCode.USAGE
        )
    signer, sign_error = None, None
    if not no_bundle and not no_sign:
        try:  # before the evaluation: a key problem is found in seconds, not after hours
            signer = make_signer(key, passphrase_env)
        except KitError as e:
            if e.code != ExitCode.KEY_ERROR or not allow_unsigned:
                raise
            sign_error = e.message
    task_names = split_tasks(tasks)
    if benchmark and task_names:
        raise KitError("give --benchmark or --tasks, not both", ExitCode.USAGE)
    if tasks is not None and not task_names:
        raise KitError("--tasks is empty", ExitCode.USAGE)
    default_job = model is None and not benchmark and not task_names
    from kit.evaluate.shard.plan import resolve_spec

    shard_spec = resolve_spec(shard, shard_count, os.environ)
    offline = offline or env_offline()
    if offline:
        go_offline()
    from kit.machine.hfcache import use_writable_hf_home

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
        model_name=model_name,
        code=code,
        allow_dirty=allow_dirty,
        release_date=release_date,
        training_datasets=split_tasks(training_datasets),
        container=_container_record(),
    )
    from kit.cli.progress import TqdmReporter
    from kit.evaluate.runner import run_evaluation
    from kit.publish.submission import unsigned_hint
    from kit.runfolder import RUN, default_output

    if default_job and not as_json:
        click.echo(f"repro-kit: default job: {DEFAULT_MODEL} on STSBenchmark", err=True)
    from kit.evaluate.faults import guard

    failure: KitError | None = None
    out = Path(opts.output) if opts.output else default_output(model_name or opts.model)
    try:
        with guard(out, opts.batch_size):
            summary = run_evaluation(opts, reporter=None if opts.quiet else TqdmReporter())
        out, rec = summary.output, summary.record
    except KitError as e:  # a task failed, the others ran: still bundle (partial)
        if e.code != ExitCode.EVALUATION_FAILED or no_bundle or not (out / RUN).is_file():
            raise
        failure, rec = e, json.loads((out / RUN).read_text())
    sub = None
    if not no_bundle:
        from kit.publish.submission import submit_run

        sub, failed_signing = submit_run(out, bundle_path, signer, allow_unsigned)
        sign_error = sign_error or failed_signing
    if as_json:
        click.echo(json.dumps(_summary_json(out, rec, sub), indent=2, sort_keys=True))
    else:
        _print_summary(out, rec, sub, default_job)
    if failure is not None:
        raise failure
    if sign_error is not None:
        raise KitError(
            f"{sign_error}; the bundle was written unsigned (--allow-unsigned): "
            f"{unsigned_hint(Path(sub.path) if sub else out)}",
            ExitCode.KEY_ERROR,
        )


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


def _print_summary(out: Path, rec: dict[str, Any], sub: Any, default_job: bool) -> None:
    from kit.publish.submission import unsigned_hint

    for t in rec["tasks"]:
        score = t.get("main_score")
        shown = f"{score:.6f}" if score is not None else "-"
        click.echo(f"{t['name']:<40} {t['main_metric']:<20} {shown}  ({t['status']})")
    click.echo(f"run folder: {out}")
    if sub is None:
        click.echo(f"bundle it: repro-kit bundle {out} -o {out}.tar.gz --sign KEY")
    else:
        who = f"signed by {sub.fingerprint}" if sub.signed else "UNSIGNED"
        part = f", PARTIAL ({', '.join(sub.partial)} not complete)" if sub.partial else ""
        click.echo(f"bundle: {sub.path} ({who}{part}; verified)")
        click.echo(f"sha256: {sub.sha256}")
        if sub.partial:
            click.echo("next: re-run the same command to finish it (the run resumes)")
        else:
            click.echo(
                f"next: attach {sub.path} to the submission; repro-kit export {sub.path} "
                "--results-repo results"
                + ("" if sub.signed else f"; {unsigned_hint(Path(sub.path))}")
            )
    if default_job:
        click.echo(FULL_BENCHMARK_HINT)


def _summary_json(output: Path, rec: dict[str, Any], sub: Any = None) -> dict[str, Any]:
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
