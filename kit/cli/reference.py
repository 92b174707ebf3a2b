"""`repro-kit reference`: a model's published scores, built from a results checkout."""

from __future__ import annotations

import json
from pathlib import Path

import click

from kit.errors import ExitCode, KitError


@click.command("reference")
@click.argument("model")
@click.option(
    "--results-repo",
    type=click.Path(path_type=Path),
    required=True,
    help="Checkout of github.com/embeddings-benchmark/results (a git work tree with results/).",
)
@click.option(
    "-o",
    "--output",
    "dest",
    type=click.Path(path_type=Path),
    required=True,
    help="Reference JSON to write (for verify --reference and report --against).",
)
def reference(model: str, results_repo: Path, dest: Path) -> None:
    """Build MODEL's reference (per-task main scores of MTEB(eng, v1) and v2, their means, each
    score's source file) from a results checkout, with mteb's ResultCache."""
    from kit.fsio import atomic_write_text
    from kit.publish.reference import build_reference

    ref = build_reference(model, results_repo)
    try:
        atomic_write_text(dest, json.dumps(ref, indent=1, sort_keys=False) + "\n")
    except OSError as e:
        raise KitError(f"cannot write {dest}: {e.strerror or e}", ExitCode.OUTPUT) from None
    found, missing = len(ref["task_main_scores"]), len(ref["missing"])
    click.echo(
        f"wrote {dest}: {found} tasks of {model} ({missing} missing) from "
        f"{ref['results_repo']} at {ref['results_commit'] or 'an unknown commit'}"
    )
