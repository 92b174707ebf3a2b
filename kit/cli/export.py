"""`repro-kit export`: a verified bundle into the layout of MTEB's results repository."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from kit.cli.options import trust_options
from kit.errors import ExitCode, KitError


@click.command("export")
@click.argument("bundle_file", type=click.Path(path_type=Path))
@click.option(
    "--results-repo",
    type=click.Path(path_type=Path),
    required=True,
    help="Checkout of github.com/embeddings-benchmark/results (a git work tree holding results/).",
)
@click.option(
    "--init",
    "init_repo",
    is_flag=True,
    help="Make --results-repo an empty results checkout first (git init, results/) when it "
    "is missing or empty; a results checkout is left as it is.",
)
@trust_options()
@click.option(
    "--check",
    is_flag=True,
    help="Dry run: apply the results repository's rules to what would be written; write nothing.",
)
@click.option(
    "--allow-drift",
    is_flag=True,
    help="Accept replacing a main score that moves by more than 0.001.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an existing model_meta.json of other content (model_meta.json only).",
)
@click.option(
    "--base",
    "base_ref",
    metavar="REF",
    help="Measure drift against the merge-base of REF and HEAD (default: origin/main, else main).",
)
@click.option(
    "--all", "show_all", is_flag=True, help="With --check: rows of every file in the folder."
)
@click.option(
    "--revision",
    metavar="SHA",
    help="For a local-model bundle: the commit of its hub upload (its cached snapshot must "
    "have the bundle's model digest).",
)
@click.option(
    "--model-card",
    type=click.Path(path_type=Path),
    help="Also write the model card (README.md for the hub) with the verified scores, as mteb's "
    "create-model-results writes it.",
)
def export(
    bundle_file: Path,
    results_repo: Path,
    policy: Any,
    check: bool,
    allow_drift: bool,
    overwrite: bool,
    revision: str | None,
    model_card: Path | None,
    init_repo: bool,
    base_ref: str | None,
    show_all: bool,
) -> None:
    """Verify BUNDLE_FILE and merge its results into a checkout of MTEB's results repository.

    A task file already holding the bundle's scores is left alone; only the subsets it lacks
    are added. The repository's rules are checked first, against the pull request's base.
    """
    from kit.publish.export import plan_export, rules_failure, write_export
    from kit.verify.verified import require_verified

    verified = require_verified(bundle_file, policy, "refusing to export")
    make = _results_checkout(results_repo, init_repo, check)
    plan = plan_export(
        verified,
        results_repo,
        overwrite=overwrite,
        revision=revision,
        allow_drift=allow_drift,
        base_ref=base_ref,
    )
    if check:
        _check(plan, show_all)
        return
    if make and rules_failure(plan, written=False) is None:
        from kit.publish.resultsrepo import init_checkout

        init_checkout(results_repo)
        click.echo(f"made an empty results checkout in {results_repo} (--init)", err=True)
    done = write_export(plan)
    if model_card is not None:
        from kit.publish.model_card import write_model_card

        write_model_card(verified, model_card)
        click.echo(f"model card  {model_card}", err=True)
    for item in done:
        click.echo(f"{item.action:<11} {item.path}")
    written = sum(item.action != "unchanged" for item in done)
    base = "nothing (the checkout --init made has no commit yet)" if make else plan.base
    click.echo(
        f"{written} of {len(done)} files written to {results_repo}; drift measured against {base}",
        err=True,
    )
    _drift_lines(plan)
    versions = ", ".join(plan.mteb_versions) or "unknown"
    click.echo(
        f"result files written by mteb {versions} (the repository's CI runs mteb from git main)",
        err=True,
    )
    _pr_lines(plan)
    _paste_lines(plan)


def _paste_lines(plan: Any) -> None:
    """The last lines: the bundle line for the pull request's description, and its review."""
    from kit.publish.nextstep import review_paste

    ev = plan.evidence
    paste = review_paste(ev["bundle"], ev["bundle_sha256"], signed=ev["signature"] != "unsigned")
    click.echo(
        f"paste into the pull request's description ({paste.placeholder}: the bundle's https "
        "URL once it is attached to the pull request or a release):",
        err=True,
    )
    click.echo(paste.line, err=True)
    click.echo("a maintainer reviews the pull request in a checkout of it with:", err=True)
    click.echo(paste.review.line, err=True)
    for note in paste.review.notes:
        click.echo(f"  {note}", err=True)


def _check(plan: Any, show_all: bool) -> None:
    """``--check``: the rule rows, what each file would become, then the first failure."""
    from kit.cli.render import rules_table
    from kit.publish.export import rules_failure

    rows, hidden = plan.shown(show_all)
    rules_table(rows)
    for name, merged in plan.files:
        click.echo(f"would be {merged.action:<9} {plan.folder / name}")
    if hidden:
        click.echo(f"{hidden} other files of the folder left alone (--all shows their rows)")
    _drift_lines(plan)
    error = rules_failure(plan, written=True)
    if error is not None:
        raise error
    click.echo(
        f"{len(plan.rules)} rule checks pass against {plan.base}; nothing written (--check)",
        err=True,
    )


def _pr_lines(plan: Any) -> None:
    """The lines for the pull-request description: the evidence and every accepted drift."""
    ev = plan.evidence
    signer = ev["signature"]
    if ev["signer_fingerprint"]:
        signer += f" by {ev['signer_fingerprint']}"
    if ev["signer_principals"]:
        signer += f" ({', '.join(ev['signer_principals'])})"
    click.echo(
        "for the pull-request description: "
        f"repro-kit bundle {ev['bundle']} sha256 {ev['bundle_sha256']}, "
        f"manifest sha256 {ev['manifest_sha256']}, signature {signer}",
        err=True,
    )
    for task, d in plan.accepted:
        click.echo(
            f"for the pull-request description: {task} {d.split}/{d.subset} moves "
            f"{d.old:.6f} -> {d.new:.6f} ({d.delta:+.6f}), accepted with --allow-drift; the "
            "results repository's test_results_diff fails on it until maintainers accept it",
            err=True,
        )


def _drift_lines(plan: Any) -> None:
    """One line per accepted drift (stderr), and what the repository's CI makes of it."""
    for task, d in plan.accepted:
        click.echo(
            f"accepted drift: {task} {d.split}/{d.subset} {d.old:.6f} -> {d.new:.6f} "
            f"({d.delta:+.6f}, over 0.001)",
            err=True,
        )
    if plan.accepted:
        click.echo(
            "the results repository's CI (test_results_diff) refuses a main score moved by more "
            "than 0.001 unless its maintainers accept it",
            err=True,
        )


def _results_checkout(repo: Path, init: bool, check: bool) -> bool:
    """Refuse a --results-repo that is not a results checkout, or lies in the kit's own
    checkout (NOT_RESULTS_CHECKOUT, before anything is written); True when --init is to make
    it (once the rules passed)."""
    from kit.publish.resultsrepo import UPSTREAM, checkout_problem, init_problem, kit_checkout

    own = kit_checkout(repo)
    if own is not None:
        raise KitError(
            f"{repo} lies inside repro-kit's own checkout ({own}); export into a results "
            f"checkout outside it, e.g. --results-repo {own.parent / 'results'} --init; "
            "nothing written",
            ExitCode.NOT_RESULTS_CHECKOUT,
        )
    problem = checkout_problem(repo)
    if problem is None:
        return False
    if init and check:
        raise KitError("--check writes nothing; --init makes a checkout: give one", ExitCode.USAGE)
    if init:
        why = init_problem(repo)
        if why is None:
            return True
        raise KitError(
            f"--init cannot make {repo} a results checkout: {why}; nothing written",
            ExitCode.NOT_RESULTS_CHECKOUT,
        )
    raise KitError(
        f"{repo} is not a results checkout ({problem}); clone {UPSTREAM} there, or pass "
        "--init to make an empty one; nothing written",
        ExitCode.NOT_RESULTS_CHECKOUT,
    )
