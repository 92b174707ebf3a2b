"""A bundle file is read once: `verify --rerun` and `export` check it and use what they checked.

The CLI runs in-process (click's runner) with every ``open`` of the bundle's path counted, so
a second read anywhere (the archive reader, a hash of the file, a re-parse) fails the test.
"""

from __future__ import annotations

import builtins
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kit.bundle.write import write_bundle
from kit.cli import cli


@pytest.fixture(scope="module")
def unsigned_bundle(sts_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("read_once") / "sts.tar.gz"
    write_bundle(sts_run, dest)
    return dest


@pytest.fixture
def opens_of(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``opens_of(path)`` -> how often ``path`` was opened since the fixture started."""
    seen: list[str] = []
    real_open = builtins.open

    def counting_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, str | os.PathLike):
            seen.append(os.path.realpath(os.fspath(file)))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    monkeypatch.setattr(io, "open", counting_open)
    yield lambda path: seen.count(os.path.realpath(path))


def _invoke(args: list[str], hf_home: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def test_verify_rerun_reads_the_bundle_once(
    unsigned_bundle: Path, hf_home: Path, monkeypatch: pytest.MonkeyPatch, opens_of: Any
) -> None:
    result = _invoke(
        ["verify", str(unsigned_bundle), "--allow-unsigned", "--rerun", "STSBenchmark"],
        hf_home,
        monkeypatch,
    )
    assert result.exit_code == 0, result.output
    assert "STSBenchmark" in result.output
    assert opens_of(unsigned_bundle) == 1


def test_export_reads_the_bundle_once(
    unsigned_bundle: Path,
    hf_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    opens_of: Any,
) -> None:
    repo = tmp_path / "results-repo"
    result = _invoke(
        ["export", str(unsigned_bundle), "--results-repo", str(repo), "--allow-unsigned"],
        hf_home,
        monkeypatch,
    )
    assert result.exit_code == 0, result.output
    assert any(p.name == "STSBenchmark.json" for p in repo.rglob("*.json"))
    assert opens_of(unsigned_bundle) == 1
