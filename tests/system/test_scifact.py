"""SciFact (retrieval) through `repro-kit evaluate` equals the published score: minutes of
encoding on 2 cores, so it runs in the system tier (CI), not in the README's test command."""

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
