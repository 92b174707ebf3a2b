"""`repro-kit merge`: combine verified shard bundles into the bundle of one whole run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from kit.cli.options import Signer, env_offline, signing_options, trust_options
from kit.errors import ExitCode, KitError


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
    "--store",
    "stores",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Within-task shards: the folder holding their batches (shard-I-of-N/); repeatable.",
)
@signing_options(help_sign="Sign the merged manifest with this SSH key.")
@trust_options()
def merge(
    shard_bundles: tuple[Path, ...],
    dest: Path,
    stores: tuple[Path, ...],
    signer: Signer | None,
    policy: Any,
) -> None:
    """Verify SHARD_BUNDLES (from evaluate --shard I/N) and merge them into one bundle.

    Refuses (exit 15) shards that disagree (model, revision, options, versions, plan), a
    missing shard, or a task given twice. Shards made with --within-tasks: every batch of
    every split task must be there once (--store), and each split task is scored here from
    them, with no model. The result passes `repro-kit verify`.
    """
    from kit.machine.hfcache import use_writable_hf_home
    from kit.publish.merge import write_merged
    from kit.verify.verified import require_verified

    if stores:
        use_writable_hf_home()  # the reduce reads datasets; before datasets reads HF_HOME

    if dest.is_dir():
        raise KitError(
            f"{dest} is a folder; give a file name such as merged.tar.gz", ExitCode.USAGE
        )
    for path in shard_bundles:
        if not path.is_file():
            raise KitError(f"{path} not found", ExitCode.NOT_FOUND)
    shards = [require_verified(p, policy, "refusing to merge") for p in shard_bundles]
    info = write_merged(
        shards, dest, signer, ["repro-kit", *sys.argv[1:]], stores=stores, offline=env_offline()
    )
    click.echo(
        f"wrote {info.path} ({info.shards} shards, {info.tasks} tasks, "
        f"{info.members} files, {info.size} bytes"
        f"{', signed' if info.signed else ', unsigned'})"
    )
