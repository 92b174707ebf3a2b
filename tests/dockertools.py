"""Helpers of the Docker tests: the CLI in a subprocess, test image builds, image inspection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support import BASE_IMAGE, REPO

HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
LOCAL_WHEELS = Path("/opt/wheels")


def kit(*args: str, env: dict | None = None, timeout: int = 1800) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess, in the checkout, with this environment plus ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "kit", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=REPO,
    )


def build_args(flavor: str, tag: str) -> list[str]:
    """`repro-kit container build` arguments for a test image of ``flavor``."""
    args = ["container", "build", "--flavor", flavor, "--base-image", BASE_IMAGE, "--tag", tag]
    args += ["--network", "host"]
    if HOST_CA.exists():
        args += ["--ca-cert", str(HOST_CA)]
    if flavor == "cpu" and LOCAL_WHEELS.is_dir():
        args += ["--wheels", str(LOCAL_WHEELS)]
    return args


def inspect_image(ref: str) -> dict:
    """`docker image inspect` of one image."""
    out = subprocess.run(
        ["docker", "image", "inspect", ref], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out)[0]
