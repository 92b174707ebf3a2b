"""`repro-kit verify` (with `--rerun`), `compare` and `schema`."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from kit.cli.options import (
    Signer,
    console,
    echo_err,
    env_offline,
    go_offline,
    make_signer,
    partial_option,
    plain,
    split_tasks,
    tolerance_options,
    trust_options,
)
from kit.errors import ExitCode, KitError

F = TypeVar("F", bound=Callable[..., Any])

# The options that only make sense with --rerun, by parameter name -> flag (for the message).
_RERUN_ONLY = {
    "sample": "--sample",
    "sample_seed": "--seed",
    "in_container": "--in-container",
    "offline": "--offline",
    "rerun_output": "--rerun-output",
    "no_embedding_cache": "--no-embedding-cache",
    "dry_run": "--dry-run",
    "review_bundle": "--review-bundle",
    "key": "--sign",
    "model_path": "--model-path",
}


@dataclass(frozen=True)
class RerunOptions:
    """The --rerun options, checked: what ``_rerun`` asks of the core."""

    tasks: tuple[str, ...]  # --rerun's tasks (empty: all)
    sample: int | None
    sample_seed: int | None
    in_container: bool
    offline: bool
    output: Path | None
    embedding_cache: bool
    model_path: Path | None
    dry_run: bool
    review_bundle: Path | None
    key: Path | None
    passphrase_env: str | None

    @classmethod
    def from_flags(
        cls,
        rerun: str,
        *,
        sample: int | None,
        sample_seed: int | None,
        in_container: bool,
        offline: bool,
        rerun_output: Path | None,
        no_embedding_cache: bool,
        dry_run: bool,
        review_bundle: Path | None,
        key: Path | None,
        model_path: Path | None,
        passphrase_env: str | None,
    ) -> RerunOptions:
        """From --rerun's value and the other flags (by parameter name)."""
        return cls(
            tasks=split_tasks(rerun),
            sample=sample,
            sample_seed=sample_seed,
            in_container=bool(in_container),
            offline=bool(offline),
            output=rerun_output,
            embedding_cache=not no_embedding_cache,
            model_path=model_path,
            dry_run=bool(dry_run),
            review_bundle=review_bundle,
            key=key,
            passphrase_env=passphrase_env,
        )


def rerun_options(fn: F) -> F:
    """Add --rerun and its options; refuse any of them without --rerun; pass ``rerun_opts``
    (a ``RerunOptions``, or None without --rerun)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kw: Any) -> Any:
        rerun = kw.pop("rerun")
        given = {name: kw.pop(name) for name in [*_RERUN_ONLY, "passphrase_env"]}
        if rerun is None:
            used = [flag for name, flag in _RERUN_ONLY.items() if given[name] not in (None, False)]
            if used:
                raise KitError(f"{used[0]} needs --rerun", ExitCode.USAGE)
            kw["rerun_opts"] = None
        else:
            if given["key"] and not given["review_bundle"]:
                raise KitError("--sign needs --review-bundle", ExitCode.USAGE)
            kw["rerun_opts"] = RerunOptions.from_flags(rerun, **given)
        return fn(*args, **kw)

    opts = [
        click.option(
            "--rerun",
            is_flag=False,
            flag_value="",
            default=None,
            metavar="[TASKS]",
            help="After the checks pass, re-run these tasks (comma-separated; all when none "
            "given) with the bundle's settings and compare with the claimed scores.",
        ),
        click.option("--sample", type=int, metavar="K", help="Re-run K tasks drawn cheap-first."),
        click.option(
            "--seed", "sample_seed", type=int, help="Seed of the --sample draw (default: new)."
        ),
        click.option(
            "--in-container", is_flag=True, help="Re-run in the image the bundle records."
        ),
        click.option(
            "--offline",
            is_flag=True,
            help="Hermetic re-run: local HF cache only (in a container: --network none).",
        ),
        click.option(
            "--rerun-output",
            type=click.Path(path_type=Path),
            help="Keep the re-run's run folder here (default: a temporary folder, removed).",
        ),
        click.option("--no-embedding-cache", is_flag=True, help="Re-compute every embedding."),
        click.option(
            "--model-path",
            type=click.Path(path_type=Path),
            help="The model folder of a local-model bundle (refused unless its content digest "
            "is the bundle's).",
        ),
        click.option("--dry-run", is_flag=True, help="Show the re-run plan only."),
        click.option(
            "--review-bundle",
            type=click.Path(path_type=Path),
            help="Bundle the re-run as a review record (its run.json names the reviewed bundle).",
        ),
        click.option(
            "--sign", "key", type=click.Path(path_type=Path), help="Sign the review bundle."
        ),
        click.option("--passphrase-env", metavar="VAR", help="Read the key's passphrase from VAR."),
    ]
    out: Any = wrapper
    for opt in reversed(opts):
        out = opt(out)
    return out


@click.command()
@click.argument("bundle_file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--recompute",
    is_flag=True,
    help="Then recompute every score from the bundle's per-sample predictions and the "
    "datasets in the local HF cache (offline, no model; exit 26 on a differing score, 27 "
    "when predictions do not line up with the data).",
)
@click.option(
    "--reference",
    type=click.Path(path_type=Path),
    help="Published per-task scores (JSON), a folder of mteb result files, or 'published' / "
    "'published:ORG/NAME' (the scores the kit ships for the bundle's model or ORG/NAME).",
)
@tolerance_options
@trust_options()
@partial_option(
    help_text="Pass a partial bundle (a task failed or did not run), saying it is partial; "
    "not with --rerun."
)
@rerun_options
def verify(
    bundle_file: Path,
    as_json: bool,
    recompute: bool,
    reference: Path | None,
    tolerance: float,
    mean_tolerance: float,
    policy: Any,
    allow_partial: bool,
    rerun_opts: RerunOptions | None,
) -> None:
    """Check a bundle: archive safety, signature, schema, integrity, scores, consistency,
    completeness, reference.

    With --recompute, then recompute every score from its predictions (one check per task).
    With --rerun, then re-run tasks of it and compare the scores (exit 31 on a mismatch).
    """
    from kit.verify.reference import load_reference
    from kit.verify.verified import check_bundle

    if recompute:  # before any HF library is imported (verify's task layouts may import mteb)
        go_offline()
        from kit.machine.hfcache import use_writable_hf_home

        use_writable_hf_home()

    signer: Signer | None = None
    if rerun_opts and rerun_opts.key:
        signer = make_signer(rerun_opts.key, rerun_opts.passphrase_env)
    ref = load_reference(reference) if reference else None
    report, verified = check_bundle(
        bundle_file,
        signature=policy,
        reference=ref,
        tolerance=tolerance,
        mean_tolerance=mean_tolerance,
        allow_partial=allow_partial,
    )
    result = None
    if recompute and verified is not None:
        _recompute(report, verified)
    if rerun_opts is not None and verified is not None and verified.partial is not None:
        raise KitError(
            f"refusing to re-run {bundle_file}: it is a partial bundle", ExitCode.PARTIAL
        )
    if rerun_opts is not None and verified is not None and report.ok:
        result = _rerun(verified, report, rerun_opts, tolerance, signer)
    if as_json:
        rerun_json = None if result is None else result.to_json()
        click.echo(json.dumps({**report.to_json(), "rerun": rerun_json}, indent=2, sort_keys=True))
    else:
        from kit.cli.render import print_rerun_report, print_verify_report

        print_verify_report(console(), report)
        if result is not None:
            print_rerun_report(console(), result.to_json())
    if not report.ok:
        bad = report.first_failure()
        hint = _hint(bad.code, policy, report.signed)
        echo_err(plain(f"repro-kit: verify failed at {bad.name}: {bad.reason}{hint}"))
    sys.exit(int(report.exit_code) or (result.exit_code if result is not None else 0))


def _recompute(report: Any, verified: Any) -> None:
    """Add verify --recompute's per-task checks to ``report`` (kit/verify/predcheck.py)."""
    from kit.evaluate.mteb_adapter import quiet_libraries
    from kit.verify.mtebedge import MtebEdge
    from kit.verify.predcheck import add_recompute

    quiet_libraries()
    add_recompute(report, verified.run, verified.records, MtebEdge())


def _hint(code: ExitCode, policy: Any, signed: bool) -> str:
    """What to pass to get past a signature refusal (the core never names a flag)."""
    from kit.signing.policy import NoTrustAnchor

    if code == ExitCode.UNSIGNED and isinstance(policy, NoTrustAnchor) and signed:
        return " (give --allowed-signers or --public-key)"
    if code == ExitCode.UNSIGNED:
        return " (pass --allow-unsigned to check it anyway)"
    if code == ExitCode.PARTIAL:
        return " (pass --allow-partial to accept it as partial)"
    return ""


def _rerun(
    verified: Any, report: Any, o: RerunOptions, tolerance: float, signer: Signer | None
) -> Any:
    """Re-run the verified bundle's tasks as the --rerun options ask."""
    from kit.rerun.execute import rerun_bundle
    from kit.rerun.plan import RerunRequest

    req = RerunRequest(
        tasks=o.tasks,
        sample=o.sample,
        seed=o.sample_seed,
        in_container=o.in_container,
        offline=o.offline or (not o.in_container and env_offline()),
        output=o.output,
        tolerance=tolerance,
        embedding_cache=o.embedding_cache,
        dry_run=o.dry_run,
        model_path=o.model_path,
    )
    req.hf_home, req.hf_cache = _rerun_hf(req.offline, o.in_container)
    return rerun_bundle(verified, report, req, echo_err, o.review_bundle, signer)


def _rerun_hf(offline: bool, in_container: bool) -> tuple[Path, dict[str, str] | None]:
    """The HF cache a re-run reads: mounted read-only in a container, or viewed on the host."""
    home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
    if offline and not in_container:
        go_offline()
    if in_container:
        return home, None
    from kit.machine.hfcache import use_writable_hf_home

    return home, use_writable_hf_home()


@click.command()
@click.argument("name", type=click.Choice(["manifest", "run", "environment", "training"]))
def schema(name: str) -> None:
    """Print the JSON Schema of a record (manifest, run, environment or training)."""
    from kit.bundle import schemas

    click.echo(schemas.text(name), nl=False)


@click.command()
@click.argument("a", type=click.Path(path_type=Path))
@click.argument("b", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def compare(a: Path, b: Path, as_json: bool) -> None:
    """Why do two runs differ? Environment differences (likely causes first) and score deltas."""
    from kit.verify.compare import compare as do_compare
    from kit.verify.compare import load_side

    result = do_compare(load_side(a), load_side(b))
    if as_json:
        click.echo(json.dumps(result, indent=2, sort_keys=True, default=str))
        return
    from kit.cli.render import print_compare

    print_compare(console(), result)
