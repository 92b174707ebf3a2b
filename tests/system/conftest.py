"""The system tier: Docker, image builds, Slurm and the Kubernetes pod script, Chromium, the
faults the operating system makes (mounts as root, signals), shards run as parallel processes
and merged, the long tasks (SciFact, Banking77Classification: minutes each) and a new user's way.

Each test requires its component through ``tests.support.require``: skipped where it is
missing, failed under CI (``REPRO_KIT_CI=1``), which provides all of them.
"""

from __future__ import annotations

import time

import pytest

from tests.dockertools import build_args, inspect_image, kit
from tests.support import need_docker


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
