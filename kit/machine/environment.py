"""Collect ``environment.json``: the machine, the software and the settings that move numbers.

Only allow-listed environment variables are recorded, and any whose name looks like a
secret is dropped even if allow-listed; values that look like tokens are never written.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from kit import __version__
from kit.fsio import sha256_file
from kit.machine.git import git_revision, is_dirty

# Variables that change numbers or where data comes from (never credentials).
ENV_ALLOWLIST = (
    "CUBLAS_WORKSPACE_CONFIG",
    "CUDA_VISIBLE_DEVICES",
    "CUDA_LAUNCH_BLOCKING",
    "HF_HOME",
    "HF_DATASETS_CACHE",
    "HF_HUB_CACHE",
    "HF_HUB_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_ENDPOINT",
    "MKL_NUM_THREADS",
    "MTEB_CACHE",
    "NVIDIA_TF32_OVERRIDE",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "PYTHONHASHSEED",
    "PYTORCH_CUDA_ALLOC_CONF",
    "PYTORCH_ENABLE_MPS_FALLBACK",
    "TOKENIZERS_PARALLELISM",
    "TORCH_DETERMINISTIC",
    "SENTENCE_TRANSFORMERS_HOME",
)
_SECRET_NAME = re.compile(r"TOKEN|KEY|SECRET|PASS|CRED|AUTH|COOKIE|SESSION", re.I)
_SECRET_VALUE = re.compile(r"(hf_[A-Za-z0-9]{20,}|[A-Za-z0-9_\-]{32,}|://[^/\s]*:[^@\s]*@)")
IMAGE_INFO_PATH = Path("/etc/repro-kit/image.json")


def recorded_env_vars(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The allow-listed variables that are set, minus anything secret-like."""
    environ = dict(os.environ if environ is None else environ)
    out = {}
    for name in ENV_ALLOWLIST:
        value = environ.get(name)
        if value is None or _SECRET_NAME.search(name):
            continue
        if _SECRET_VALUE.search(value) and not value.startswith("/"):
            value = "<redacted>"
        out[name] = value
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        try:
            return subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            ).stdout.strip()
        except OSError:
            pass
    return platform.processor() or platform.machine()


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _hardware() -> dict[str, Any]:
    return {
        "cpu_model": _cpu_model(),
        "cpu_count_logical": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "machine": platform.machine(),
        "memory_bytes": _memory_bytes(),
    }


def _torch_info() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "version": torch.__version__,
        "cuda_build": torch.version.cuda,
        "num_threads": torch.get_num_threads(),
        "num_interop_threads": torch.get_num_interop_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cuda_available": torch.cuda.is_available(),
        "mps_available": bool(
            getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
        ),
        "mps_built": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_built()),
        "gpus": [],
    }
    if torch.cuda.is_available():
        info["cudnn_version"] = torch.backends.cudnn.version()
        info["cudnn_deterministic"] = torch.backends.cudnn.deterministic
        info["cudnn_benchmark"] = torch.backends.cudnn.benchmark
        info["tf32_matmul"] = torch.backends.cuda.matmul.allow_tf32
        info["tf32_cudnn"] = torch.backends.cudnn.allow_tf32
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            info["gpus"].append(
                {
                    "name": p.name,
                    "memory_bytes": p.total_memory,
                    "capability": f"{p.major}.{p.minor}",
                }
            )
        info["driver_version"] = _nvidia_driver()
    return info


def _nvidia_driver() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
        return out.splitlines()[0] if out else None
    except (OSError, subprocess.SubprocessError):
        return None


def installed_distributions() -> dict[str, str]:
    """Every installed distribution and its version, sorted by normalised name."""
    out: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata.get("Name")  # type: ignore[attr-defined]  # an email Message
        if name:
            out[re.sub(r"[-_.]+", "-", name).lower()] = dist.version
    return dict(sorted(out.items()))


def _container() -> dict[str, Any] | None:
    """Container identity as seen from inside (the host-side launcher adds the image ID)."""
    in_docker = Path("/.dockerenv").exists()
    cgroup = ""
    with contextlib.suppress(OSError):
        cgroup = Path("/proc/1/cgroup").read_text()
    image_info = None
    if IMAGE_INFO_PATH.exists():
        try:
            import json

            image_info = json.loads(IMAGE_INFO_PATH.read_text())
            image_info["image_json_sha256"] = sha256_file(IMAGE_INFO_PATH)
        except (OSError, ValueError):
            image_info = {"error": "unreadable /etc/repro-kit/image.json"}
    if not (in_docker or "docker" in cgroup or "kubepods" in cgroup or image_info):
        return None
    return {
        "runtime": "docker" if in_docker or "docker" in cgroup else "container",
        "hostname": socket.gethostname(),
        "image": image_info,
    }


def _kit_git_revision() -> str | None:
    """The kit checkout's commit, ``-dirty`` when tracked files changed; None if not a checkout."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    rev = git_revision(root, timeout=5)
    return f"{rev}-dirty" if rev and is_dirty(root, timeout=5) else rev


def speed_profile() -> dict[str, Any]:
    """CPU model and torch's thread count: what a re-run's speed estimate compares."""
    import torch

    return {"cpu_model": _cpu_model(), "threads": torch.get_num_threads()}


def collect_environment() -> dict[str, Any]:
    """Everything about where the run happened, as a plain JSON-able dict."""
    uname = platform.uname()
    torch_info = _torch_info()
    container = _container()
    return {
        "hardware": _hardware(),
        "os": {
            "system": uname.system,
            "release": uname.release,
            "version": uname.version,
            "platform": platform.platform(),
            "libc": "-".join(platform.libc_ver()) or None,
        },
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "torch": torch_info,
        "packages": installed_distributions(),
        "env_vars": recorded_env_vars(),
        "container": container,
        "native_mps": bool(torch_info["mps_available"] and container is None),
        "kit": {"version": __version__, "git_revision": _kit_git_revision()},
    }
