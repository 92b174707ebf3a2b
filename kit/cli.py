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
    task_names = _split_tasks(tasks)
    if benchmark and task_names:
        raise KitError("give --benchmark or --tasks, not both", ExitCode.USAGE)
    if tasks is not None and not task_names:
        raise KitError("--tasks is empty", ExitCode.USAGE)
    default_job = model is None and not benchmark and not task_names
    from kit.shard import resolve_spec

    shard_spec = resolve_spec(shard, shard_count, os.environ)
    offline = offline or os.environ.get("HF_HUB_OFFLINE", "") in {"1", "true", "True"}
    if offline:
        for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
            os.environ[var] = "1"
    from kit.hfcache import use_writable_hf_home

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


def _console():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False, width=max(100, min(160, _term_width())))


def _term_width() -> int:
    import shutil

    return shutil.get_terminal_size((120, 24)).columns


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "dest",
    type=click.Path(path_type=Path),
    required=True,
    help="Bundle file to write, e.g. bundle.tar.gz.",
)
@click.option(
    "--sign",
    "key",
    type=click.Path(path_type=Path),
    help="Sign the manifest with this SSH private key (Ed25519, ECDSA or RSA).",
)
@click.option(
    "--passphrase-env",
    metavar="VAR",
    help="Read the key's passphrase from this environment variable.",
)
def bundle(run_dir: Path, dest: Path, key: Path | None, passphrase_env: str | None) -> None:
    """Package RUN_DIR into one deterministic, schema-validated archive."""
    from kit.bundle import write_bundle

    signer = _signer(key, passphrase_env) if key else None
    info = write_bundle(run_dir, dest, signer)
    click.echo(
        f"wrote {info['path']} ({info['members']} files, {info['size']} bytes"
        f"{', signed' if info['signed'] else ', unsigned'})"
    )


def _signer(key: Path, passphrase_env: str | None):
    """A function that signs bytes with the user's SSH key (prompting for a passphrase)."""
    from kit import sshsig

    passphrase = None
    if passphrase_env:
        if passphrase_env not in os.environ:
            raise KitError(f"environment variable {passphrase_env} is not set", ExitCode.USAGE)
        passphrase = os.environ[passphrase_env].encode()
    try:
        private = sshsig.load_private_key(key, passphrase)
    except KitError as e:
        needs = "passphrase" in e.message.lower() and passphrase is None
        if not (needs and sys.stdin.isatty()):
            raise
        passphrase = click.prompt(f"Passphrase for {key}", hide_input=True).encode()
        private = sshsig.load_private_key(key, passphrase)
    return lambda data: sshsig.sign(data, private)


@cli.command()
@click.argument("bundle_file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--reference",
    type=click.Path(path_type=Path),
    help="Published per-task scores (JSON) or a folder of mteb result files.",
)
@click.option(
    "--tolerance",
    type=float,
    default=0.001,
    show_default=True,
    help="Per-task tolerance, absolute on the 0-1 scale.",
)
@click.option(
    "--mean-tolerance",
    type=float,
    default=0.005,
    show_default=True,
    help="Tolerance of the benchmark means.",
)
@click.option(
    "--allowed-signers",
    type=click.Path(path_type=Path),
    help="OpenSSH allowed_signers file (the format git uses).",
)
@click.option("--identity", help="Principal that must have signed (with --allowed-signers).")
@click.option("--public-key", type=click.Path(path_type=Path), help="Signer's .pub key.")
@click.option("--allow-unsigned", is_flag=True, help="Check an unsigned bundle anyway.")
@click.option(
    "--rerun",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[TASKS]",
    help="After the checks pass, re-run these tasks (comma-separated; all when none given) "
    "with the bundle's settings and compare with the claimed scores.",
)
@click.option("--sample", type=int, metavar="K", help="Re-run K tasks drawn cheap-first.")
@click.option("--seed", "sample_seed", type=int, help="Seed of the --sample draw (default: new).")
@click.option("--in-container", is_flag=True, help="Re-run in the image the bundle records.")
@click.option(
    "--offline",
    is_flag=True,
    help="Hermetic re-run: local HF cache only (in a container: --network none).",
)
@click.option(
    "--rerun-output",
    type=click.Path(path_type=Path),
    help="Keep the re-run's run folder here (default: a temporary folder, removed).",
)
@click.option("--no-embedding-cache", is_flag=True, help="Re-compute every embedding.")
@click.option("--dry-run", is_flag=True, help="Show the re-run plan only.")
@click.option(
    "--review-bundle",
    type=click.Path(path_type=Path),
    help="Bundle the re-run as a review record (its run.json names the reviewed bundle).",
)
@click.option("--sign", "key", type=click.Path(path_type=Path), help="Sign the review bundle.")
@click.option("--passphrase-env", metavar="VAR", help="Read the key's passphrase from VAR.")
def verify(
    bundle_file: Path,
    as_json: bool,
    reference: Path | None,
    tolerance: float,
    mean_tolerance: float,
    allowed_signers: Path | None,
    identity: str | None,
    public_key: Path | None,
    allow_unsigned: bool,
    rerun: str | None = None,
    sample: int | None = None,
    sample_seed: int | None = None,
    in_container: bool = False,
    offline: bool = False,
    rerun_output: Path | None = None,
    no_embedding_cache: bool = False,
    dry_run: bool = False,
    review_bundle: Path | None = None,
    key: Path | None = None,
    passphrase_env: str | None = None,
) -> None:
    """Check a bundle: archive safety, signature, schema, integrity, scores, reference.

    With --rerun, then re-run tasks of it and compare the scores (exit 31 on a mismatch).
    """
    from kit.reference import load_reference
    from kit.verify import SignaturePolicy, verify_bundle

    rerun_only = {
        "--sample": sample,
        "--seed": sample_seed,
        "--in-container": in_container,
        "--offline": offline,
        "--rerun-output": rerun_output,
        "--no-embedding-cache": no_embedding_cache,
        "--dry-run": dry_run,
        "--review-bundle": review_bundle,
        "--sign": key,
    }
    given = [name for name, value in rerun_only.items() if value is not None and value is not False]
    if rerun is None and given:
        raise KitError(f"{given[0]} needs --rerun", ExitCode.USAGE)
    if key and not review_bundle:
        raise KitError("--sign needs --review-bundle", ExitCode.USAGE)
    signer = _signer(key, passphrase_env) if key else None
    policy = SignaturePolicy.from_options(allowed_signers, identity, public_key, allow_unsigned)
    ref = load_reference(reference) if reference else None
    report = verify_bundle(
        bundle_file,
        signature=policy,
        reference=ref,
        tolerance=tolerance,
        mean_tolerance=mean_tolerance,
    )
    result = None
    if rerun is not None and report.ok:
        from kit.rerun import RerunRequest, rerun_bundle

        req = RerunRequest(
            tasks=_split_tasks(rerun),
            sample=sample,
            seed=sample_seed,
            in_container=in_container,
            offline=offline
            or (not in_container and os.environ.get("HF_HUB_OFFLINE", "") in {"1", "true", "True"}),
            output=rerun_output,
            tolerance=tolerance,
            embedding_cache=not no_embedding_cache,
            dry_run=dry_run,
        )
        req.hf_home, req.hf_cache = _rerun_hf(req.offline, in_container)
        log = lambda line: click.echo(line, err=True)  # noqa: E731
        result = rerun_bundle(bundle_file, report, req, log, review_bundle, signer)
    if as_json:
        click.echo(json.dumps({**report.to_json(), "rerun": result}, indent=2, sort_keys=True))
    else:
        from kit.render import print_rerun_report, print_verify_report

        print_verify_report(_console(), report)
        if result is not None:
            print_rerun_report(_console(), result)
    sys.exit(int(report.exit_code) or (result or {}).get("exit_code", 0))


def _rerun_hf(offline: bool, in_container: bool) -> tuple[Path, dict[str, str] | None]:
    """The HF cache a re-run reads: mounted read-only in a container, or viewed on the host."""
    home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
    if offline and not in_container:
        for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
            os.environ[var] = "1"
    if in_container:
        return home, None
    from kit.hfcache import use_writable_hf_home

    return home, use_writable_hf_home()


@cli.command()
@click.argument("name", type=click.Choice(["manifest", "run", "environment"]))
def schema(name: str) -> None:
    """Print the JSON Schema of a record (manifest, run or environment)."""
    from kit import schemas

    click.echo(schemas.text(name), nl=False)


@cli.command()
@click.argument("a", type=click.Path(path_type=Path))
@click.argument("b", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def compare(a: Path, b: Path, as_json: bool) -> None:
    """Why do two runs differ? Environment differences (likely causes first) and score deltas."""
    from kit.compare import compare as do_compare
    from kit.compare import load_side

    result = do_compare(load_side(a), load_side(b))
    if as_json:
        click.echo(json.dumps(result, indent=2, sort_keys=True, default=str))
        return
    from kit.render import print_compare

    print_compare(_console(), result)


@cli.command()
@click.option(
    "-f",
    "--file",
    "path",
    type=click.Path(path_type=Path),
    default=Path("~/.ssh/id_ed25519_repro_kit").expanduser(),
    show_default=True,
    help="Private key path (the public key goes to PATH.pub).",
)
@click.option(
    "-C", "--comment", default="", help="Identity to put in the key and line, e.g. your e-mail."
)
@click.option("--passphrase-env", metavar="VAR", help="Encrypt with the passphrase in VAR.")
@click.option("--passphrase", "ask", is_flag=True, help="Prompt for a passphrase.")
def keygen(path: Path, comment: str, passphrase_env: str | None, ask: bool) -> None:
    """Make a new Ed25519 SSH key pair and print its allowed_signers line."""
    from kit import sshsig

    passphrase = None
    if passphrase_env:
        if passphrase_env not in os.environ:
            raise KitError(f"environment variable {passphrase_env} is not set", ExitCode.USAGE)
        passphrase = os.environ[passphrase_env].encode()
    elif ask:
        passphrase = click.prompt("Passphrase", hide_input=True, confirmation_prompt=True).encode()
    line = sshsig.generate_keypair(path, passphrase, comment)
    click.echo(f"wrote {path} (mode 0600) and {path}.pub", err=True)
    click.echo("share this allowed_signers line with reviewers:", err=True)
    click.echo(line)


@cli.command("sign")
@click.argument("bundle_file", type=click.Path(path_type=Path))
@click.option(
    "--key",
    type=click.Path(path_type=Path),
    required=True,
    help="SSH private key (Ed25519, ECDSA or RSA).",
)
@click.option("--passphrase-env", metavar="VAR", help="Read the passphrase from VAR.")
@click.option(
    "-o",
    "--output",
    "dest",
    type=click.Path(path_type=Path),
    help="Write the signed bundle here (default: replace BUNDLE_FILE atomically).",
)
def sign_cmd(bundle_file: Path, key: Path, passphrase_env: str | None, dest: Path | None) -> None:
    """Sign an existing bundle's manifest (after checking the bundle is intact)."""
    from kit.archive import write_deterministic_targz
    from kit.bundle import add_signature
    from kit.verify import SignaturePolicy, load_members, verify_bundle

    report = verify_bundle(bundle_file, signature=SignaturePolicy(allow_unsigned=True))
    if not report.ok:
        bad = next(c for c in report.checks if c.ok is False)
        raise KitError(
            f"refusing to sign a bundle that fails verify: {bad.name}: {bad.reason}", bad.code
        )
    signer = _signer(key, passphrase_env)
    members = add_signature(load_members(bundle_file), signer)
    write_deterministic_targz(members, dest or bundle_file)
    click.echo(f"signed {dest or bundle_file}")


@cli.group()
def container() -> None:
    """Build the pinned images and run evaluations in them (needs a Docker daemon)."""


@container.command("build")
@click.option("--flavor", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--base-image", help="Base image (default: the official python 3.11 slim image).")
@click.option("--tag", help="Image tag (default: repro-kit:FLAVOR).")
@click.option(
    "--ca-cert",
    type=click.Path(path_type=Path),
    help="CA bundle pip needs during the build (builder stage only).",
)
@click.option(
    "--wheels",
    type=click.Path(path_type=Path),
    help="Folder of local wheels pip may use (hashes still checked).",
)
@click.option("--network", help="Network for the build's RUN steps (e.g. host).")
@click.option("--source", type=click.Path(path_type=Path), help="repro-kit checkout to build.")
@click.option("--no-cache", is_flag=True, help="Rebuild every layer (a cold build).")
def container_build(
    flavor: str,
    base_image: str | None,
    tag: str | None,
    ca_cert: Path | None,
    wheels: Path | None,
    network: str | None,
    source: Path | None,
    no_cache: bool,
) -> None:
    """Build Dockerfile.cpu or Dockerfile.cuda with the docker SDK."""
    from kit.container import BuildRequest, build_image

    info = build_image(
        BuildRequest(flavor, base_image, tag, ca_cert, wheels, network, source, no_cache),
        log=lambda line: click.echo(line, err=True),
    )
    click.echo(f"built {info['tag']} {info['image_id']} ({(info['size'] or 0) / 1e9:.2f} GB)")


@container.command(
    "evaluate", context_settings={"ignore_unknown_options": True, "allow_extra_args": True}
)
@click.option("--image", default="repro-kit:cpu", show_default=True)
@click.option(
    "--network",
    type=click.Choice(["none", "host", "bridge"]),
    default="bridge",
    show_default=True,
    help="none: hermetic run from a prefilled cache (--hf-home).",
)
@click.option(
    "--hf-home",
    type=click.Path(path_type=Path),
    help="HF cache to mount read-only as the container's HF_HOME.",
)
@click.option(
    "--output", "-o", type=click.Path(path_type=Path), required=True, help="Run folder on the host."
)
@click.option("--gpus/--no-gpus", default=None, help="Request GPUs (default: for cuda images).")
@click.pass_context
def container_evaluate(
    ctx: click.Context,
    image: str,
    network: str,
    hf_home: Path | None,
    output: Path,
    gpus: bool | None,
) -> None:
    """Run `repro-kit evaluate` in IMAGE; other options are passed to evaluate."""
    from kit.container import RunRequest, run_evaluate

    if gpus is None:
        gpus = image.endswith(":cuda") or "cuda" in image.rsplit(":", 1)[-1]
    code = run_evaluate(
        RunRequest(image, network, hf_home, output, list(ctx.args), gpus),
        log=lambda line: click.echo(line, err=True),
    )
    if code != 0:
        sys.exit(code)
    click.echo(f"run folder: {output}")


@cli.command()
@click.argument("model", required=False)
@click.option("--revision")
@click.option("--benchmark")
@click.option("--tasks")
def prefetch(
    model: str | None, revision: str | None, benchmark: str | None, tasks: str | None
) -> None:
    """Fill the HF cache with what an offline or --network none run needs, and list it."""
    from kit.prefetch import prefetch as do_prefetch

    task_names = _split_tasks(tasks)
    if benchmark and task_names:
        raise KitError("give --benchmark or --tasks, not both", ExitCode.USAGE)
    if not benchmark and not task_names and model is None:
        task_names = DEFAULT_TASKS
    fetched = do_prefetch(model or DEFAULT_MODEL, revision, task_names, benchmark)
    for item in fetched:
        click.echo(f"{item['kind']:<8} {item['name']:<45} {item['revision']}")


# -- commands defined in their own modules (kit/cli_*.py) register here --
from kit.cli_report import report as _report_cmd  # noqa: E402

cli.add_command(_report_cmd)
from kit.cli_export import export as _export_cmd  # noqa: E402

cli.add_command(_export_cmd)
from kit.cli_merge import merge as _merge_cmd  # noqa: E402

cli.add_command(_merge_cmd)
