"""`docker kill` of a real container during `repro-kit container evaluate` (README, "Faults"):
exit 30 with the run folder resumable, and the same command resumes it to the scores of an
uninterrupted run (the session fixture `biosses_run`). Needs the CPU image (slow)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kit.errors import ExitCode
from tests.faulttools import finish as _finish
from tests.faulttools import no_half_files as _no_half_files
from tests.faulttools import one_line as _one_line
from tests.faulttools import record as _record
from tests.faulttools import scores as _scores
from tests.faulttools import wait_for as _wait_for
from tests.support import REPO


@pytest.fixture(scope="module")
def cache(hf_home: Path) -> Path:
    """The session's copy of the data and the model (the container mounts it read-only)."""
    return hf_home


@pytest.fixture(scope="module")
def reference(biosses_run: Path) -> dict:
    return _scores(biosses_run)


def _containers(image: str) -> list[str]:
    ps = ["docker", "ps", "-q", "--filter", f"ancestor={image}"]
    return subprocess.run(ps, capture_output=True, text=True, check=True).stdout.split()


def _mounts(cid: str) -> list[str]:
    fmt = "{{range .Mounts}}{{.Source}}\n{{end}}"
    cmd = ["docker", "inspect", "-f", fmt, cid]
    return subprocess.run(cmd, capture_output=True, text=True).stdout.split()


@pytest.mark.slow
@pytest.mark.docker
def test_docker_kill_during_container_evaluate(
    cpu_image: str,
    cache: Path,
    reference: dict,
    tmp_path: Path,
) -> None:
    """`docker kill` mid-task: 30 with the folder resumable; the same command resumes it."""
    out = tmp_path / "run"
    tasks = "BIOSSES,STSBenchmark"
    args = [sys.executable, "-m", "kit", "container", "evaluate", "--image", cpu_image]
    args += ["--hf-home", str(cache), "--network", "none", "-o", str(out), "--tasks", tasks, "-q"]
    proc = subprocess.Popen(
        args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )

    def biosses_done() -> bool:
        try:
            return _record(out)["tasks"][0]["status"] == "complete"
        except (OSError, ValueError, KeyError):
            return False

    _wait_for(biosses_done, proc, timeout=600)
    ids = [cid for cid in _containers(cpu_image) if str(out.resolve()) in _mounts(cid)]
    assert len(ids) == 1, ids  # ours: the one with this run folder mounted
    subprocess.run(["docker", "kill", ids[0]], check=True, capture_output=True)
    line = _one_line(_finish(proc), ExitCode.DOCKER)
    assert "killed (SIGKILL, exit 137)" in line and f"{out} is resumable" in line
    _no_half_files(out)
    again = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr
    assert _record(out)["status"] == "complete"
    assert _scores(out) == {t: reference[t] for t in tasks.split(",")}
