"""A bundle file is read once: `verify --rerun` and `export` check it and use what they checked.

The real CLI runs in a fresh Python process (its HF cache set up as a user's would be) with
every ``open`` of the bundle's path counted, so a second read anywhere (the archive reader, a
hash of the file, a re-parse) fails the test. On verify's way each member is also parsed by
the strict JSON reader at most once (the manifest exactly once): every check, the comparison
and the re-run read the records parsed after the integrity check.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO, kit_env

# Counts opens of argv[1] (resolved), runs `repro-kit ARGS...`, writes to argv[2] as JSON the
# count and, per member of the bundle (its bytes as the archive reader gave them) and per line
# of its JSON-lines members, how often the strict JSON reader parsed it.
_COUNTING_CLI = """
import builtins, io, json, os, sys
target, report = os.path.realpath(sys.argv[1]), sys.argv[2]
seen = [0]
real_open = builtins.open
def counting_open(file, *args, **kwargs):
    if isinstance(file, (str, os.PathLike)) and os.path.realpath(os.fspath(file)) == target:
        seen[0] += 1
    return real_open(file, *args, **kwargs)
builtins.open = io.open = counting_open
from kit.bundle import archive, jsonread
members, parses = {}, {}
real_archive, real_parse = archive.parse_bundle_archive, jsonread._parse
def capturing_archive(*args, **kwargs):
    out = real_archive(*args, **kwargs)
    members.update(out)
    return out
def counting_parse(data, *args):
    for name, value in members.items():
        if data is value:
            parses[name] = parses.get(name, 0) + 1
        elif name.endswith(".jsonl") and isinstance(data, bytes) and data.strip():
            for i, line in enumerate(value.split(b"\\n"), 1):
                if line == data:
                    key = f"{name} line {i}"
                    parses[key] = parses.get(key, 0) + 1
    return real_parse(data, *args)
archive.parse_bundle_archive, jsonread._parse = capturing_archive, counting_parse
sys.argv = ["repro-kit", *sys.argv[3:]]
from kit.cli import main
try:
    main()
finally:
    with real_open(report, "w") as f:
        json.dump({"opens": seen[0], "parses": parses, "members": sorted(members)}, f)
"""


@pytest.fixture(scope="module")
def unsigned_bundle(sts_bundle: Path) -> Path:
    """The session's unsigned STS bundle (tests/e2e/conftest.py)."""
    return sts_bundle


def _counts(bundle: Path, args: list[str], hf_home: Path, tmp_path: Path) -> dict[str, Any]:
    """Run the CLI with ``args``; assert it succeeded; return how often ``bundle`` was opened
    (``opens``) and how often each member was parsed (``parses``)."""
    count = tmp_path / "counts.json"
    proc = subprocess.run(
        [sys.executable, "-c", _COUNTING_CLI, str(bundle), str(count), *args],
        env=kit_env(hf_home),
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    counts: dict[str, Any] = json.loads(count.read_text())
    return counts


def test_verify_rerun_reads_the_bundle_once(
    unsigned_bundle: Path, hf_home: Path, tmp_path: Path
) -> None:
    args = ["verify", str(unsigned_bundle), "--allow-unsigned", "--rerun", "STSBenchmark"]
    counts = _counts(unsigned_bundle, [*args, "--json"], hf_home, tmp_path)
    assert counts["opens"] == 1
    parses = counts["parses"]
    assert parses["manifest.json"] == 1, parses
    assert {n: c for n, c in parses.items() if c > 1} == {}
    # every record a check reads was parsed (so the counting saw the checks' parses)
    results = [n for n in counts["members"] if n.startswith("results/")]
    task_file = next(n for n in results if n.endswith("/STSBenchmark.json"))
    meta = next(n for n in results if n.endswith("/model_meta.json"))
    for name in ("run.json", "environment.json", task_file, meta):
        assert parses.get(name) == 1, (name, parses)
    settings = next(n for n in results if n.endswith("/run_settings.jsonl"))
    assert any(k.startswith(f"{settings} line ") for k in parses), parses


def test_export_reads_the_bundle_once(unsigned_bundle: Path, hf_home: Path, tmp_path: Path) -> None:
    repo = tmp_path / "results-repo"
    args = [
        "export",
        str(unsigned_bundle),
        "--results-repo",
        str(repo),
        "--init",
        "--allow-unsigned",
    ]
    assert _counts(unsigned_bundle, args, hf_home, tmp_path)["opens"] == 1
    assert any(p.name == "STSBenchmark.json" for p in repo.rglob("*.json"))
    assert json.loads(next(repo.rglob("STSBenchmark.json")).read_text())["task_name"] == (
        "STSBenchmark"
    )


# Runs `repro-kit ARGS...` and writes the names of the modules it imported to argv[1].
_MODULES_CLI = """
import sys
out = sys.argv[1]
sys.argv = ["repro-kit", *sys.argv[2:]]
from kit.cli import main
try:
    main()
finally:
    with open(out, "w") as f:
        f.write("\\n".join(sorted(sys.modules)))
"""


@pytest.mark.parametrize("as_json", [False, True])
def test_verify_imports_only_what_it_uses(
    unsigned_bundle: Path, hf_home: Path, tmp_path: Path, as_json: bool
) -> None:
    """A valid bundle's verify: no jsonschema (the records are valid), no crypto (unsigned),
    no importlib.metadata (mteb's version read from its dist-info), no mteb or torch."""
    listing = tmp_path / "modules.txt"
    args = ["verify", str(unsigned_bundle), "--allow-unsigned", *(["--json"] if as_json else [])]
    proc = subprocess.run(
        [sys.executable, "-c", _MODULES_CLI, str(listing), *args],
        env=kit_env(hf_home),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    modules = set(listing.read_text().split("\n"))
    assert "kit.verify.checks" in modules  # the listing saw verify's own imports
    heavy = {"jsonschema", "cryptography", "importlib.metadata", "mteb", "torch", "numpy"}
    assert not heavy & modules
    assert ("rich" in modules) is not as_json  # the table is drawn only without --json
