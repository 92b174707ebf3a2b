"""`repro-kit export`: a verified bundle into the layout of MTEB's results repository."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from kit.cli.options import trust_options


@click.command("export")
@click.argument("bundle_file", type=click.Path(path_type=Path))
@click.option(
    "--results-repo",
    type=click.Path(path_type=Path),
    required=True,
    help="Checkout of github.com/embeddings-benchmark/results (created if missing).",
)
@trust_options()
@click.option("--overwrite", is_flag=True, help="Replace existing files that differ.")
@click.option(
    "--revision",
    metavar="SHA",
    help="For a local-model bundle: the commit of its hub upload (its cached snapshot must "
    "have the bundle's model digest).",
)
def export(
    bundle_file: Path, results_repo: Path, policy: Any, overwrite: bool, revision: str | None
) -> None:
    """Verify BUNDLE_FILE and write its results in the layout of MTEB's results repository.

    Writes results/<org__model>/<revision>/<Task>.json (mteb's files, unchanged),
    model_meta.json and run_settings.jsonl, ready for a pull request there.
    """
    from kit.publish.export import export_bundle
    from kit.verify.verified import require_verified

    verified = require_verified(bundle_file, policy, "refusing to export")
    done = export_bundle(verified, results_repo, overwrite, revision)
    for item in done:
        click.echo(f"{item.action:<11} {item.path}")
    written = sum(item.action != "unchanged" for item in done)
    click.echo(f"{written} of {len(done)} files written to {results_repo}", err=True)
