"""Command line: parse options, call the core, print results. Nothing else lives here.

One module per command group, named after it: ``evaluate`` (evaluate, prefetch), ``signing``
(bundle, sign, keygen), ``verify`` (verify and its --rerun, compare, schema), ``report``,
``reference``, ``export``, ``review``, ``merge``, ``container``; the options several commands
share are declared once in ``options``, evaluate's in groups in ``evaluate_options``; ``render`` and
``progress`` draw on the terminal. Only this package imports click and rich; it may import
every other package of the kit. ``main`` applies the project config (``repro-kit.toml``)
first and prints every error, click's usage errors included, as one line.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

import click

from kit import __version__
from kit.cli.options import plain, shown
from kit.errors import ExitCode, KitError

# command name -> "module:attribute" under kit.cli; a command's module is imported only when
# that command runs (or when --help lists them all), so `repro-kit verify` starts fast.
COMMANDS = {
    "evaluate": "evaluate:evaluate",
    "prefetch": "evaluate:prefetch",
    "bundle": "signing:bundle",
    "sign": "signing:sign_cmd",
    "keygen": "signing:keygen",
    "verify": "verify:verify",
    "compare": "verify:compare",
    "schema": "verify:schema",
    "report": "report:report",
    "reference": "reference:reference",
    "export": "export:export",
    "review": "review:review",
    "merge": "merge:merge",
    "container": "container:container",
}


class _LazyGroup(click.Group):
    """A group whose commands are imported from COMMANDS on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        command: Any = getattr(importlib.import_module(f"kit.cli.{module}"), attr)
        return command


def _fail(message: str, code: int) -> None:
    click.echo(f"repro-kit: error: {shown(plain(message))}", err=True)
    sys.exit(int(code))


def _usage_line(e: click.ClickException) -> str:
    """Click's error as one line, with where to read the usage (no usage block)."""
    text = " ".join(e.format_message().split())
    ctx = getattr(e, "ctx", None)
    if isinstance(e, click.UsageError) and ctx is not None:
        text += f" (see {ctx.command_path} --help)"
    return text


def _apply_project_config() -> None:
    """The settings of repro-kit.toml (kit.machine.project), before any library reads them."""
    from kit.machine.project import apply_project_config

    try:
        cwd = Path.cwd()
    except OSError:  # the working folder was removed: no config to find
        return
    apply_project_config(os.environ, cwd)


def main() -> None:
    """Entry point: map KitError to its exit code, never a traceback for user mistakes."""
    try:
        _apply_project_config()
        cli.main(standalone_mode=False, prog_name="repro-kit")
    except KitError as e:
        _fail(e.message, e.code)
    except click.exceptions.Abort:
        _fail("aborted", ExitCode.USAGE)
    except click.ClickException as e:  # usage errors too: one line, exit 2 (never 1)
        _fail(_usage_line(e), ExitCode.USAGE)
    except KeyboardInterrupt:
        _fail("interrupted; re-run the same command to resume", 130)
    except Exception as e:  # a bug in the kit: one line, the traceback only on request
        from kit.evaluate.faults import translate

        fault = translate(e, None, None)  # disk full, read-only, out of memory: never 1
        if fault is not None:
            _fail(fault.message, fault.code)
        if os.environ.get("REPRO_KIT_DEBUG"):
            raise
        what = f": {e}" if str(e) else ""
        _fail(
            f"internal error{what} (a bug: please report it; REPRO_KIT_DEBUG=1 shows the "
            "traceback)",
            ExitCode.INTERNAL,
        )
    sys.exit(0)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="repro-kit")
def cli() -> None:
    """Run MTEB reproducibly, bundle the evidence, and verify others' bundles."""
