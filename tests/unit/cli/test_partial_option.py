"""--allow-partial is declared once (kit/cli/options.py) and offered only where it makes sense."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from kit.cli import cli


@pytest.mark.parametrize(
    ("command", "offered"),
    [("verify", True), ("report", True), ("export", False), ("merge", False), ("compare", False)],
)
def test_allow_partial_where_documented(command: str, offered: bool) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert ("--allow-partial" in result.output) is offered


def test_export_refuses_the_flag_as_usage() -> None:
    result = CliRunner().invoke(
        cli, ["export", "b.tar.gz", "--results-repo", "r", "--allow-partial"]
    )
    assert result.exit_code == 2 and "No such option '--allow-partial'" in result.output
