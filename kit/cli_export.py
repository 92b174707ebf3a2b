"""`repro-kit export`: parse options, call kit.export, print the files."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("export")
@click.argument("bundle_file", type=click.Path(path_type=Path))
@click.option(
    "--results-repo",
    type=click.Path(path_type=Path),
    required=True,
    help="Checkout of github.com/embeddings-benchmark/results (created if missing).",
)
@click.option(
    "--allowed-signers",
    type=click.Path(path_type=Path),
    help="OpenSSH allowed_signers file (the format git uses).",
)
@click.option("--identity", help="Principal that must have signed (with --allowed-signers).")
@click.option("--public-key", type=click.Path(path_type=Path), help="Signer's .pub key.")
@click.option("--allow-unsigned", is_flag=True, help="Export an unsigned bundle anyway.")
@click.option("--overwrite", is_flag=True, help="Replace existing files that differ.")
def export(
    bundle_file: Path,
    results_repo: Path,
    allowed_signers: Path | None,
    identity: str | None,
    public_key: Path | None,
    allow_unsigned: bool,
    overwrite: bool,
) -> None:
    """Verify BUNDLE_FILE and write its results in the layout of MTEB's results repository.

    Writes results/<org__model>/<revision>/<Task>.json (mteb's files, unchanged),
    model_meta.json and run_settings.jsonl, ready for a pull request there.
    """
    from kit.export import export_bundle
    from kit.verify import SignaturePolicy

    policy = SignaturePolicy.from_options(allowed_signers, identity, public_key, allow_unsigned)
    done = export_bundle(bundle_file, results_repo, policy, overwrite)
    for item in done:
        click.echo(f"{item.action:<11} {item.path}")
    written = sum(item.action != "unchanged" for item in done)
    click.echo(f"{written} of {len(done)} files written to {results_repo}", err=True)
