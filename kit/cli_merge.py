"""CLI ``merge``: combine verified shard bundles into the bundle of one whole run."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("merge")
@click.argument("shard_bundles", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "dest",
    type=click.Path(path_type=Path),
    required=True,
    help="Merged bundle to write, e.g. merged.tar.gz.",
)
@click.option(
    "--sign",
    "key",
    type=click.Path(path_type=Path),
    help="Sign the merged manifest with this SSH private key.",
)
@click.option("--passphrase-env", metavar="VAR", help="Read the key's passphrase from VAR.")
@click.option(
    "--allowed-signers",
    type=click.Path(path_type=Path),
    help="Check the shards' signatures against this allowed_signers file.",
)
@click.option("--identity", help="Principal that must have signed (with --allowed-signers).")
@click.option("--public-key", type=click.Path(path_type=Path), help="Shard signer's .pub key.")
@click.option("--allow-unsigned", is_flag=True, help="Accept unsigned (or unchecked) shards.")
def merge(
    shard_bundles: tuple[Path, ...],
    dest: Path,
    key: Path | None,
    passphrase_env: str | None,
    allowed_signers: Path | None,
    identity: str | None,
    public_key: Path | None,
    allow_unsigned: bool,
) -> None:
    """Verify SHARD_BUNDLES (from evaluate --shard I/N) and merge them into one bundle.

    Refuses (exit 15) shards that disagree (model, revision, options, versions, plan), a
    missing shard, or a task given twice. The result passes `repro-kit verify`.
    """
    from kit.cli import _signer
    from kit.merge import write_merged
    from kit.verify import SignaturePolicy

    policy = SignaturePolicy.from_options(allowed_signers, identity, public_key, allow_unsigned)
    signer = _signer(key, passphrase_env) if key else None
    info = write_merged(list(shard_bundles), dest, policy, signer, ["repro-kit", *sys.argv[1:]])
    click.echo(
        f"wrote {info['path']} ({info['shards']} shards, {info['tasks']} tasks, "
        f"{info['members']} files, {info['size']} bytes"
        f"{', signed' if info['signed'] else ', unsigned'})"
    )
