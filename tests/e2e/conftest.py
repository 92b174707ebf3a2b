"""Fixtures of the e2e tier beyond the session's real runs (those are in tests/conftest.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import clean_env


@pytest.fixture(scope="session")
def sts_bundle(sts_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`repro-kit bundle` of the session's STS run, unsigned; made once, only read by tests.

    Bundles are deterministic (tests/e2e/test_bundle_verify.py), so every test that needs the
    run as a bundle reads this one file; a test that changes a bundle copies it first.
    """
    dest = tmp_path_factory.mktemp("sts_bundle") / "sts.tar.gz"
    proc = subprocess.run(
        [sys.executable, "-m", "kit", "bundle", str(sts_run), "-o", str(dest)],
        capture_output=True,
        text=True,
        timeout=300,
        env=clean_env(),
    )
    assert proc.returncode == 0, proc.stderr
    return dest
