"""`repro-kit bundle`, `sign` and `keygen`: package a run, sign a bundle, make a key."""

from __future__ import annotations

import os
from pathlib import Path

import click

from kit.cli.options import Signer, echo_err, print_next_step, signing_options
from kit.errors import ExitCode, KitError


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "dest",
    type=click.Path(path_type=Path),
    required=True,
    help="Bundle file to write, e.g. bundle.tar.gz.",
)
@signing_options(
    help_sign="Sign the manifest with this SSH key (Ed25519, ECDSA or RSA).", pass_key=True
)
def bundle(run_dir: Path, dest: Path, signer: Signer | None, signing_key: Path | None) -> None:
    """Package RUN_DIR into one deterministic, schema-validated archive."""
    from kit.bundle.write import write_bundle

    info = write_bundle(run_dir, dest, signer)
    click.echo(
        f"wrote {info.path} ({info.members} files, {info.size} bytes"
        f"{', signed' if info.signed else ', unsigned'}{', PARTIAL' if info.partial else ''})"
    )
    if info.partial:
        echo_err(
            f"repro-kit: bundle is partial (run {info.partial['status']}; "
            + (", ".join(f"{t['name']} {t['status']}" for t in info.partial["tasks"]) or "no task")
            + "): verify and report need --allow-partial; export and merge refuse it"
        )
    else:
        from kit.bundle.archive import read_bundle_archive
        from kit.bundle.manifest import SIGNATURE
        from kit.publish.submission import signing_key_line

        armored = read_bundle_archive(dest).get(SIGNATURE) if info.signed else None
        print_next_step(dest, signing_key_line(armored), signing_key)


@click.command("sign")
@click.argument("bundle_file", type=click.Path(path_type=Path))
@signing_options(help_sign="Sign the manifest with this SSH key.", required=True)
@click.option(
    "-o",
    "--output",
    "dest",
    type=click.Path(path_type=Path),
    help="Write the signed bundle here (default: replace BUNDLE_FILE atomically).",
)
def sign_cmd(bundle_file: Path, signer: Signer, dest: Path | None) -> None:
    """Sign an existing bundle's manifest (after checking the bundle is intact)."""
    from kit.bundle.archive import write_deterministic_targz
    from kit.bundle.write import add_signature
    from kit.signing.policy import AcceptUnsigned
    from kit.verify.verified import require_verified

    verified = require_verified(
        bundle_file, AcceptUnsigned(None), "refusing to sign", allow_partial=True
    )
    members = add_signature(dict(verified.members), signer)
    write_deterministic_targz(members, dest or bundle_file)
    click.echo(f"signed {dest or bundle_file}")


@click.command()
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
    from kit.signing.keys import generate_keypair

    passphrase = None
    if passphrase_env:
        if passphrase_env not in os.environ:
            raise KitError(f"environment variable {passphrase_env} is not set", ExitCode.USAGE)
        passphrase = os.environ[passphrase_env].encode()
    elif ask:
        passphrase = click.prompt("Passphrase", hide_input=True, confirmation_prompt=True).encode()
    line = generate_keypair(path, passphrase, comment)
    click.echo(f"wrote {path} (mode 0600) and {path}.pub", err=True)
    click.echo("share this allowed_signers line with reviewers:", err=True)
    click.echo(line)
