"""--within-tasks and --store: checked together, with --shard, before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from kit.cli import cli
from kit.cli.evaluate_options import ShardChoice
from kit.errors import ExitCode, KitError


@pytest.mark.parametrize(
    ("choice", "why"),
    [
        (ShardChoice(None, None, True, Path("s")), "--within-tasks goes with --shard"),
        (ShardChoice("0/2", None, True, None), "--within-tasks and --store DIR go together"),
        (ShardChoice("0/2", None, False, Path("s")), "--within-tasks and --store DIR go together"),
    ],
)
def test_within_tasks_needs_a_shard_and_a_store(choice: ShardChoice, why: str):
    with pytest.raises(KitError) as e:
        choice.spec({})
    assert e.value.code == ExitCode.USAGE and why in str(e.value)


def test_a_within_task_shard_is_a_shard():
    spec = ShardChoice("1/3", None, True, Path("s")).spec({})
    assert spec is not None and (spec.index, spec.count) == (1, 3)


def test_the_cli_refuses_within_tasks_without_a_store():
    result = CliRunner().invoke(
        cli, ["evaluate", "M", "--tasks", "T", "--shard", "0/2", "--within-tasks", "--no-bundle"]
    )
    assert isinstance(result.exception, KitError), result.output
    assert result.exception.code == ExitCode.USAGE and "--store" in str(result.exception)


def test_merge_offers_store():
    result = CliRunner().invoke(cli, ["merge", "--help"])
    assert result.exit_code == 0 and "--store" in result.output
