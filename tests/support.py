"""Helpers shared by the test tiers (not a test module: nothing here is collected).

Paths and names of the real data, the real CLI in a subprocess, writable copies of the shared
Hugging Face cache, and ``require``: what a test needs from this machine, skipped where it is
missing, failed instead where CI provides it (``REPRO_KIT_CI=1``, set by ``.ci/run``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("REPRO_KIT_SHARED", REPO.parent / "shared")).resolve()
MTEB_CACHE = SHARED / "mteb-cache"
REFERENCE_DIR = SHARED / "reference"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_REVISION = "8b3219a92973c328a8e22fadcfa821b5dc75636a"
PLANTED_TOKEN = "hf_plantedSecretTokenValue1234567890abcd"

# What CI provides, and the per-component switches that existed before REPRO_KIT_CI.
CI = "REPRO_KIT_CI"
_REQUIRE = {
    "docker": "REPRO_KIT_REQUIRE_DOCKER",
    "slurm": "REPRO_KIT_REQUIRE_SLURM",
    "chromium": "REPRO_KIT_REQUIRE_CHROMIUM",
}


def under_ci() -> bool:
    """True when every component a test needs must be there (``REPRO_KIT_CI=1``)."""
    return os.environ.get(CI, "") not in ("", "0")


def require(component: str, present: bool, how: str) -> None:
    """Skip the test when ``component`` is missing here; fail it instead under CI.

    ``how`` says how to get the component (e.g. ``apt-get install chromium``). Under
    ``REPRO_KIT_CI=1`` (or the component's own ``REPRO_KIT_REQUIRE_<NAME>``) a missing
    component is a failure: CI provides every one, so a skip there would hide a broken setup.
    """
    if present:
        return
    switch = _REQUIRE.get(component)
    if under_ci() or (switch and os.environ.get(switch)):
        pytest.fail(f"{component} is required here but missing ({how})", pytrace=False)
    pytest.skip(f"{component} missing ({how})")


def require_tools(*tools: str, how: str) -> None:
    """``require`` for programs on PATH."""
    missing = [t for t in tools if shutil.which(t) is None]
    require(" ".join(missing) or "tools", not missing, how)


def require_shared() -> None:
    """The real MTEB data in ../shared/mteb-cache (never copied into the repository)."""
    require("the real MTEB data", MTEB_CACHE.is_dir(), f"expected at {MTEB_CACHE}")


def make_hf_home(dest: Path, datasets: tuple[str, ...] | None = None) -> Path:
    """Copy the shared cache (all of it, or only some dataset folders) and add the model."""
    from kit.machine.hfcache import install_default_model

    require_shared()
    if datasets is None:
        shutil.copytree(MTEB_CACHE, dest, dirs_exist_ok=True)
    else:
        for part in ("datasets", "hub"):
            for name in datasets:
                prefix = name if part == "datasets" else name.replace("mteb___", "datasets--mteb--")
                src = MTEB_CACHE / part / prefix
                if src.exists():
                    shutil.copytree(src, dest / part / prefix, dirs_exist_ok=True)
    for p in [dest, *dest.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o200)
    install_default_model(dest)
    return dest


def kit_env(hf_home: Path, **extra: str) -> dict[str, str]:
    """This process's environment for the kit: offline, the given HF cache, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "REPRO_KIT_DEBUG"))}
    env.update(HF_HOME=str(hf_home), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.setdefault("XDG_CACHE_HOME", str(Path(hf_home).parent / "xdg-cache"))  # mteb task layouts
    env.update(extra)
    return env


def run_kit(args: list[str], hf_home: Path, timeout: int = 900, **env: str):
    """Run the real CLI in a subprocess (as a user would)."""
    return subprocess.run(
        [sys.executable, "-m", "kit", *args],
        env=kit_env(hf_home, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def kit_here(args: list[str | Path], hf_home: Path | None = None, **env: str):
    """The real CLI in this process (click's CliRunner), as ``run_kit`` gives it: a
    CompletedProcess of (exit code, stdout, stderr) without a Python start and mteb's import per
    call (seconds each). A KitError becomes its exit code and the one ``repro-kit: error:`` line
    ``kit.cli.main`` prints; any other exception is a bug and fails the test. ``env`` (with
    ``hf_home``: ``kit_env``'s) is set for the call only. Where a process matters (signals, a hash
    seed, an import-time setting), use ``run_kit``.
    """
    from click.testing import CliRunner

    from kit.cli import cli
    from kit.errors import KitError

    argv = [str(a) for a in args]
    result = CliRunner().invoke(
        cli, argv, env=kit_env(hf_home, **env) if hf_home else env, catch_exceptions=True
    )
    code, err, exc = result.exit_code, result.stderr, result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        assert isinstance(exc, KitError), repr(exc)
        code, err = exc.code, f"{err}repro-kit: error: {exc.message}\n"
    return subprocess.CompletedProcess(argv, code, result.stdout, err)


def clean_env(**extra: str | None) -> dict[str, str]:
    """This process's environment without agent or signing-key settings, plus ``extra``."""
    drop = ("SSH_AUTH_SOCK", "REPRO_KIT_SIGNING_KEY")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update({k: v for k, v in extra.items() if v is not None})
    return env


def git(repo: Path, *args: str) -> str:
    """``git ARGS`` in ``repo`` with a test identity (no agent or signing key); its stdout."""
    env = clean_env(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@e")
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    ).stdout


def commit_all(repo: Path, message: str) -> None:
    """Stage everything in ``repo`` and commit it."""
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def reference_score(task: str, model: str = MODEL) -> float:
    """The published main score of ``task`` (../shared/reference)."""
    ref = json.loads((REFERENCE_DIR / f"{model.replace('/', '__')}.json").read_text())
    return float(ref["task_main_scores"][task])


def docker_ok() -> bool:
    """A Docker daemon answers here."""
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


# The base image of the test builds: made locally from the host's Python (no registry here).
BASE_IMAGE = os.environ.get("REPRO_KIT_TEST_BASE_IMAGE", "local/python:3.11-slim")


def need_docker() -> None:
    """A Docker daemon with the test base image (made when missing); skipped, under CI failed."""
    require("docker", docker_ok(), "bash scripts/docker-up.sh")
    if subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True).returncode:
        subprocess.run(
            ["bash", str(REPO / "scripts" / "make-base-image.sh"), BASE_IMAGE], check=True
        )
