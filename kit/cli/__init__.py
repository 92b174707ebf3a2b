"""Command line: parse options, call the core, print results. Nothing else lives here.

One module per command group, named after it: ``evaluate`` (evaluate, prefetch), ``signing``
(bundle, sign, keygen), ``verify`` (verify and its --rerun, compare, schema), ``report``,
``export``, ``merge``, ``container``; the options several commands share are declared once in
``options``; ``render`` and ``progress`` draw on the terminal. Only this package imports click
and rich; it may import every other package of the kit.
"""

from __future__ import annotations

import os
import sys

import click

from kit import __version__
from kit.cli import container, evaluate, export, merge, report, signing, verify
from kit.errors import ExitCode, KitError


def _fail(message: str, code: int) -> None:
    click.echo(f"repro-kit: error: {message}", err=True)
    sys.exit(int(code))


def main() -> None:
    """Entry point: map KitError to its exit code, never a traceback for user mistakes."""
    try:
        cli.main(standalone_mode=False, prog_name="repro-kit")
    except KitError as e:
        _fail(e.message, e.code)
    except click.exceptions.Abort:
        _fail("aborted", ExitCode.USAGE)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted; re-run the same command to resume", 130)
    except Exception as e:  # a bug in the kit: one line, the traceback only on request
        if os.environ.get("REPRO_KIT_DEBUG"):
            raise
        _fail(
            f"internal error: {type(e).__name__}: {e} (set REPRO_KIT_DEBUG=1 for a traceback)",
            ExitCode.INTERNAL,
        )
    sys.exit(0)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="repro-kit")
def cli() -> None:
    """Run MTEB reproducibly, bundle the evidence, and verify others' bundles."""


for _command in (
    evaluate.evaluate,
    evaluate.prefetch,
    signing.bundle,
    signing.sign_cmd,
    signing.keygen,
    verify.verify,
    verify.compare,
    verify.schema,
    report.report,
    export.export,
    merge.merge,
    container.container,
):
    cli.add_command(_command)
