"""`report --as` and `schema training` on the command line (parsing only; no bundle read)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from kit.cli import cli, main
from kit.errors import ExitCode


def test_as_baseline_needs_a_reference(monkeypatch, capsys, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["repro-kit", "report", "b.tar.gz", "--as", "baseline"])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == ExitCode.USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["repro-kit: error: --as baseline needs --against: the baseline's scores"]


def test_as_takes_the_two_roles_only() -> None:
    help_text = CliRunner().invoke(cli, ["report", "--help"]).output
    assert "--as [reproduction|baseline]" in help_text
    bad = CliRunner().invoke(cli, ["report", "b.tar.gz", "--against", "x", "--as", "winner"])
    assert bad.exit_code == 2 and "'winner' is not one of" in bad.output


def test_schema_prints_the_training_record_schema() -> None:
    out = CliRunner().invoke(cli, ["schema", "training"])
    assert out.exit_code == 0
    assert json.loads(out.output)["$id"] == "urn:repro-kit:schema:training:1"
