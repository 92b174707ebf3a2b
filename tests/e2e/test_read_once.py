"""A bundle file is read once: `verify --rerun` and `export` check it and use what they checked.

The real CLI runs in a fresh Python process (its HF cache set up as a user's would be) with
every ``open`` of the bundle's path counted, so a second read anywhere (the archive reader, a
hash of the file, a re-parse) fails the test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO, kit_env

# Counts opens of argv[1] (resolved), runs `repro-kit ARGS...`, writes the count to argv[2].
_COUNTING_CLI = """
import builtins, io, os, sys
target, report = os.path.realpath(sys.argv[1]), sys.argv[2]
seen = [0]
real_open = builtins.open
def counting_open(file, *args, **kwargs):
    if isinstance(file, (str, os.PathLike)) and os.path.realpath(os.fspath(file)) == target:
        seen[0] += 1
    return real_open(file, *args, **kwargs)
builtins.open = io.open = counting_open
sys.argv = ["repro-kit", *sys.argv[3:]]
from kit.cli import main
try:
    main()
finally:
    with real_open(report, "w") as f:
        f.write(str(seen[0]))
"""


@pytest.fixture(scope="module")
def unsigned_bundle(sts_bundle: Path) -> Path:
    """The session's unsigned STS bundle (tests/e2e/conftest.py)."""
    return sts_bundle


def _opens(bundle: Path, args: list[str], hf_home: Path, tmp_path: Path) -> int:
    """Run the CLI with ``args``; assert it succeeded; return how often ``bundle`` was opened."""
    count = tmp_path / "opens.txt"
    proc = subprocess.run(
        [sys.executable, "-c", _COUNTING_CLI, str(bundle), str(count), *args],
        env=kit_env(hf_home),
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    return int(count.read_text())


def test_verify_rerun_reads_the_bundle_once(
    unsigned_bundle: Path, hf_home: Path, tmp_path: Path
) -> None:
    args = ["verify", str(unsigned_bundle), "--allow-unsigned", "--rerun", "STSBenchmark"]
    assert _opens(unsigned_bundle, [*args, "--json"], hf_home, tmp_path) == 1


def test_export_reads_the_bundle_once(unsigned_bundle: Path, hf_home: Path, tmp_path: Path) -> None:
    repo = tmp_path / "results-repo"
    args = ["export", str(unsigned_bundle), "--results-repo", str(repo), "--allow-unsigned"]
    assert _opens(unsigned_bundle, args, hf_home, tmp_path) == 1
    assert any(p.name == "STSBenchmark.json" for p in repo.rglob("*.json"))
    assert json.loads(next(repo.rglob("STSBenchmark.json")).read_text())["task_name"] == (
        "STSBenchmark"
    )
