"""`repro-kit report`: a bundle's scores against a reference, as HTML or Markdown."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from kit.cli.options import partial_option, tolerance_options, trust_options
from kit.errors import ExitCode, KitError


@click.command("report")
@click.argument("bundle_file", type=click.Path(path_type=Path))
@click.option(
    "--against",
    type=click.Path(path_type=Path),
    help="Reference: published scores (JSON), a folder of mteb result files, another bundle, "
    "or 'published' / 'published:ORG/NAME' (the scores the kit ships for the bundle's model "
    "or for ORG/NAME).",
)
@click.option(
    "--as",
    "role",
    type=click.Choice(["reproduction", "baseline"]),
    default="reproduction",
    show_default=True,
    help="What --against is: a score to reproduce (pass / fail at the tolerances) or a "
    "baseline to beat (win / tie / loss per task, zero-shot marked, 'beats the baseline on "
    "N of M tasks').",
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
@tolerance_options
@trust_options(always_accept_unsigned=True)
@partial_option(help_text="Report on a partial bundle (the page says which tasks are missing).")
def report(
    bundle_file: Path,
    against: Path | None,
    role: str,
    dest: Path | None,
    fmt: str | None,
    tolerance: float,
    mean_tolerance: float,
    policy: Any,
    allow_partial: bool,
) -> None:
    """Verify BUNDLE_FILE, then show its scores, named means and deltas against a reference."""
    from kit.publish.report import build_report
    from kit.verify.reference import published_name
    from kit.verify.verified import require_verified

    if dest is not None and dest.is_dir():
        raise KitError(f"{dest} is a folder; give a file name such as report.html", ExitCode.USAGE)
    if role == "baseline" and against is None:
        raise KitError("--as baseline needs --against: the baseline's scores", ExitCode.USAGE)
    fmt = fmt or ("md" if dest is not None and dest.suffix.lower() == ".md" else "html")
    verified = require_verified(
        bundle_file, policy, "refusing to report on bundle", allow_partial=allow_partial
    )
    if against is not None:  # "published[:MODEL]": the scores the kit ships
        against = published_name(against, verified.manifest["model"]["name"]) or against
    model = build_report(
        verified, against=against, tolerance=tolerance, mean_tolerance=mean_tolerance, role=role
    )
    if fmt == "md":
        from kit.publish.markdown import render_md

        text = render_md(model)
    else:
        from kit.publish.html import render_html

        text = render_html(model)
    from kit.publish.html import verdict_text

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
