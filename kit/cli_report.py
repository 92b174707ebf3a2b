"""`repro-kit report`: a bundle's scores against a reference, as HTML or Markdown."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kit.errors import ExitCode, KitError
from kit.reference import DEFAULT_MEAN_TOLERANCE, DEFAULT_TOLERANCE


@click.command("report")
@click.argument("bundle_file", type=click.Path(path_type=Path))
@click.option(
    "--against",
    type=click.Path(path_type=Path),
    help="Reference: published scores (JSON), a folder of mteb result files, or another bundle.",
)
@click.option(
    "-o",
    "--output",
    "dest",
    type=click.Path(path_type=Path),
    help="Write the report here (default: standard output).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "md"]),
    help="html (default) or md; with -o, a .md name means md.",
)
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0),
    default=DEFAULT_TOLERANCE,
    show_default=True,
    help="Per-task tolerance, absolute on the 0-1 scale.",
)
@click.option(
    "--mean-tolerance",
    type=click.FloatRange(min=0),
    default=DEFAULT_MEAN_TOLERANCE,
    show_default=True,
    help="Tolerance of the benchmark means.",
)
@click.option(
    "--allowed-signers",
    type=click.Path(path_type=Path),
    help="OpenSSH allowed_signers file to check the signature against.",
)
@click.option("--identity", help="Principal that must have signed (with --allowed-signers).")
@click.option("--public-key", type=click.Path(path_type=Path), help="Signer's .pub key.")
def report(
    bundle_file: Path,
    against: Path | None,
    dest: Path | None,
    fmt: str | None,
    tolerance: float,
    mean_tolerance: float,
    allowed_signers: Path | None,
    identity: str | None,
    public_key: Path | None,
) -> None:
    """Verify BUNDLE_FILE, then show its scores, named means and deltas against a reference."""
    from kit.report import build_report
    from kit.verify import SignaturePolicy

    policy = SignaturePolicy.from_options(allowed_signers, identity, public_key)
    if dest is not None and dest.is_dir():
        raise KitError(f"{dest} is a folder; give a file name such as report.html", ExitCode.USAGE)
    fmt = fmt or ("md" if dest is not None and dest.suffix.lower() == ".md" else "html")
    model = build_report(
        bundle_file,
        against=against,
        tolerance=tolerance,
        mean_tolerance=mean_tolerance,
        signature=policy,
    )
    if fmt == "md":
        from kit.report_md import render_md

        text = render_md(model)
    else:
        from kit.report_html import render_html

        text = render_html(model)
    from kit.report_html import verdict_text

    _, verdict = verdict_text(model)
    if dest is None:
        click.echo(text, nl=False)
        click.echo(f"report: {verdict}", err=True)
        return
    from kit.fsio import atomic_write_text

    try:
        atomic_write_text(dest, text)
    except OSError as e:
        raise KitError(f"cannot write {dest}: {e.strerror or e}", ExitCode.OUTPUT) from None
    click.echo(f"report: {verdict}", err=True)
    click.echo(f"wrote {dest} ({fmt})")
    sys.stdout.flush()
