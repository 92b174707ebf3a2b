"""verify --rerun --in-container: real re-runs in the CPU image (a real dockerd)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kit.errors import ExitCode
from tests.bundletools import bundle_with_cli as _bundle
from tests.support import need_docker, run_kit

LOCK = "dev.repro-kit.lockfile-sha256"
FLAVOR = "dev.repro-kit.flavor"


def test_in_container_refused_when_image_absent_and_lockfile_differs(
    sts_run: Path, hf_home: Path, tmp_path: Path
) -> None:
    need_docker()
    run_dir = tmp_path / "elsewhere"
    shutil.copytree(sts_run, run_dir)
    run = json.loads((run_dir / "run.json").read_text())
    run["container"] = {
        "image_id": "sha256:" + "0" * 64,
        "labels": {LOCK: "f" * 64, FLAVOR: "cpu"},
        "network": "none",
    }
    (run_dir / "run.json").write_text(json.dumps(run))
    bundle = _bundle(run_dir, tmp_path / "elsewhere.tar.gz", hf_home)
    proc = run_kit(
        ["verify", str(bundle), "--allow-unsigned", "--rerun", "STSBenchmark", "--in-container"],
        hf_home,
    )
    assert proc.returncode == ExitCode.DOCKER, proc.stderr
    assert (
        "not present here" in proc.stderr and "lockfiles/cpu.txt sha256 ffffffffffff" in proc.stderr
    )
    assert "re-running" not in proc.stderr and "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def rerun_image(cpu_image: str) -> str:
    """The CPU test image, built from this checkout's code (tests/system/conftest.py)."""
    return cpu_image


@pytest.mark.slow
def test_in_container_rerun_by_image_id_hermetic(
    rerun_image: str, hf_home: Path, tmp_path: Path
) -> None:
    hf = hf_home  # the session's cache, mounted read-only
    made = tmp_path / "made"
    args = ["container", "evaluate", "--image", rerun_image, "--network", "none", "--hf-home"]
    proc = run_kit([*args, str(hf), "-o", str(made), "--tasks", "STSBenchmark", "-q"], hf)
    assert proc.returncode == 0, proc.stderr[-3000:]
    bundle = _bundle(made, tmp_path / "made.tar.gz", hf)
    image_id = json.loads((made / "run.json").read_text())["container"]["image_id"]
    out = tmp_path / "rerun"
    args = ["verify", str(bundle), "--allow-unsigned", "--rerun", "--in-container", "--offline"]
    proc = run_kit([*args, "--rerun-output", str(out), "--json"], hf)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)["rerun"]
    assert result["plan"]["image"]["image"] == image_id
    assert all(r["identical"] for r in result["tasks"]) and result["tasks"]
    rec = json.loads((out / "run.json").read_text())
    assert rec["container"]["image_id"] == image_id and rec["container"]["network"] == "none"
    assert rec["container"]["hf_home_mounted_read_only"] is True
    assert rec["review"]["embedding_cache"]["used"] is False
