"""The system tier: Docker, image builds, Slurm and the Kubernetes pod script, Chromium, the
faults the operating system makes (mounts as root, signals), shards run as parallel processes
and merged, the long tasks (SciFact, Banking77Classification: minutes each) and a new user's way.

Each test requires its component through ``tests.support.require``: skipped where it is
missing, failed under CI (``REPRO_KIT_CI=1``), which provides all of them.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.dockertools import build_args, inspect_image, kit
from tests.support import REPO, kit_env, need_docker

# Torch's threads for the shared SciFact run and the within-task Slurm shards that are compared
# with it bit for bit (the shards get --cpus-per-task=2, which Slurm passes on as OMP_NUM_THREADS).
SCIFACT_THREADS = "2"


@pytest.fixture(scope="session")
def cpu_image() -> str:
    """The CPU image built from this checkout's code, once per session; its image id.

    Always built (Docker's layer cache makes a code-only rebuild take seconds), never an older
    ``repro-kit:cpu-test`` taken as found; the id, not the tag, so another build of the tag
    elsewhere on this daemon cannot swap the image under a test.
    """
    need_docker()
    tag = "repro-kit:cpu-test"
    t0 = time.time()
    proc = kit(*build_args("cpu", tag))
    assert proc.returncode == 0, proc.stderr[-3000:]
    image_id = proc.stdout.split(f"built {tag} ", 1)[1].split()[0]  # "built TAG ID (SIZE)"
    assert inspect_image(image_id)["Id"] == image_id
    print(f"\nCPU image build: {time.time() - t0:.0f} s ({image_id[:19]})")
    return image_id


class SciFactRun(NamedTuple):
    """The shared SciFact run: its folder, its unsigned bundle, every embedding mteb received."""

    run: Path
    bundle: Path
    dump: Path


@pytest.fixture(scope="session")
def scifact_run(hf_home: Path, tmp_path_factory: pytest.TempPathFactory) -> SciFactRun:
    """One real SciFact run (minutes), shared by the long-task tests (published score, recompute
    from its predictions) and the within-task Slurm test (the unsharded side of its bit-for-bit
    comparison), instead of one run each.

    It is the kit's own evaluation (``run_evaluation``, as ``repro-kit evaluate`` runs it, default
    settings, predictions kept) through ``tests.withintools plain``, which also saves each array
    the model hands mteb; then ``repro-kit bundle --no-sign``. Two torch threads, as the shards.
    """
    d = tmp_path_factory.mktemp("scifact")
    run, dump, bundle = d / "sf", d / "dump", d / "sf.tar.gz"
    t0 = time.monotonic()
    for args in (
        ["tests.withintools", "plain", "--tasks", "SciFact", "-o", str(run), "--dump", str(dump)],
        ["kit", "bundle", str(run), "-o", str(bundle), "--no-sign"],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", *args],
            capture_output=True,
            text=True,
            env=kit_env(hf_home, OMP_NUM_THREADS=SCIFACT_THREADS),
            cwd=REPO,
            timeout=3600,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
    print(f"\nshared SciFact run: {time.monotonic() - t0:.0f} s")
    return SciFactRun(run, bundle, dump)
