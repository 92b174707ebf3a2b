"""deploy/: the Kubernetes Indexed Job and the Slurm array script parse and use real options."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from functools import cache

import pytest
import yaml

from tests.support import REPO

K8S = REPO / "deploy" / "k8s" / "indexed-job.yaml"
SLURM = REPO / "deploy" / "slurm" / "evaluate-array.sbatch"
COMMANDS = ("evaluate", "bundle", "merge", "verify")
CALL = re.compile(r"(?:repro-kit|in_image)\s+(" + "|".join(COMMANDS) + r")\b([^|;&]*)")


@cache
def _options(command: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-m", "kit", command, "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    ).stdout
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", out))


def _kit_calls(text: str) -> list[tuple[str, list[str]]]:
    """(command, options) of every repro-kit call, comments included, continuations joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    calls = []
    for line in joined.splitlines():
        for m in CALL.finditer(line):
            calls.append((m.group(1), re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", m.group(2))))
    return calls


def _assert_real_options(text: str) -> set[str]:
    calls = _kit_calls(text)
    for command, opts in calls:
        unknown = [o for o in opts if o not in _options(command)]
        assert not unknown, f"repro-kit {command} has no {unknown}"
    return {c for c, _ in calls}


def test_indexed_job_manifest() -> None:
    text = K8S.read_text()
    job = yaml.safe_load(text)
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    script = " ".join(spec["template"]["spec"]["containers"][0]["args"])
    count = int(re.search(r"--shard-count (\d+)", script).group(1))
    assert spec["completions"] == spec["parallelism"] == count
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "repro-kit:cpu" and "nvidia.com/gpu" in text
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert (
        mounts["hf-cache"]["readOnly"] is True and mounts["hf-cache"]["mountPath"] == env["HF_HOME"]
    )
    assert "out" in mounts and pod["restartPolicy"] == "Never"
    assert "--shard auto" in script and "JOB_COMPLETION_INDEX" in script
    assert {"evaluate", "bundle", "merge", "verify"} <= _assert_real_options(text)


def test_slurm_array_script() -> None:
    bash = shutil.which("bash")
    assert bash, "bash is needed"
    check = subprocess.run([bash, "-n", str(SLURM)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    text = SLURM.read_text()
    assert re.search(r"^#SBATCH --array=0-\d+$", text, re.M)
    assert "--dependency=afterany:" in text and "--shard auto" in text
    assert "apptainer" in text and "docker run" in text
    assert {"evaluate", "bundle", "merge", "verify"} <= _assert_real_options(text)


def test_slurm_script_refuses_to_run_outside_an_array(tmp_path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OUT": str(tmp_path / "out")}
    proc = subprocess.run(
        ["bash", str(SLURM), "evaluate"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert proc.returncode != 0 and "SLURM_ARRAY_TASK_ID" in proc.stderr
    proc = subprocess.run(
        ["bash", str(SLURM), "merge"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert proc.returncode == 3 and "no shard bundles" in proc.stderr


def test_option_check_catches_a_typo() -> None:
    with pytest.raises(AssertionError, match="--shards"):
        _assert_real_options("repro-kit evaluate M --shards auto")
