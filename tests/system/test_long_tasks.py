"""Long tasks through `repro-kit evaluate` equal their published scores: SciFact (retrieval)
and Banking77Classification (classifiers trained on the embeddings of its train split), minutes
each on 2 cores, so they run in the system tier (CI), not in the README's test command. The
STS tasks' published scores are checked in tests/e2e/test_evaluate.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import reference_score, run_kit


@pytest.mark.slow
def test_scifact_matches_published(hf_home: Path, tmp_path: Path) -> None:
    proc = run_kit(
        ["evaluate", "--tasks", "SciFact", "-o", str(tmp_path / "sf"), "--json", "--offline"],
        hf_home,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr
    score = json.loads(proc.stdout)["tasks"]["SciFact"]["main_score"]
    assert abs(score - reference_score("SciFact")) < 1e-5


@pytest.mark.slow
def test_banking77_matches_published(hf_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "b77"
    proc = run_kit(
        ["evaluate", "--tasks", "Banking77Classification", "-o", str(out), "--json", "--offline"],
        hf_home,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    score = summary["tasks"]["Banking77Classification"]["main_score"]
    assert abs(score - reference_score("Banking77Classification")) < 1e-6
