"""The journey example (examples/beat-the-baseline/run.sh) walked by the tests.

``walk`` runs run.sh as a user does, on the session's HF cache copy, signing through a real
ssh-agent that holds a key whose private file is deleted once added (so only the agent can
have signed). The settings are the shortest the acceptance allows: two tasks, 60 training
steps of batch 16 at learning rate 2e-4 (STSBenchmark 0.838 here, against 0.820325).
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support import REPO, clean_env, kit_env, require_tools

EXAMPLE = REPO / "examples" / "beat-the-baseline"
RUN_SH = EXAMPLE / "run.sh"
SIGNER = "journey@example.org"
SETTINGS = {"TASKS": "STSBenchmark,STS13", "STEPS": "60", "LR": "2e-4", "BATCH_SIZE": "16"}


@dataclass(frozen=True)
class Journey:
    """What a walk left: OUT, run.sh's process, the signing key's .pub, the wall time."""

    out: Path
    proc: subprocess.CompletedProcess
    pub: Path
    seconds: float


def script_env(hf_home: Path, **extra: str) -> dict[str, str]:
    """run.sh's environment: the kit's offline one, this venv first on PATH."""
    venv_bin = str(Path(sys.executable).parent)
    env = kit_env(hf_home, PYTHON=sys.executable, SIGNER=SIGNER, **extra)
    env["PATH"] = f"{venv_bin}:{env.get('PATH', '/usr/bin:/bin')}"
    env.pop("REPRO_KIT_SIGNING_KEY", None)
    return env


def start_agent(folder: Path) -> tuple[subprocess.Popen, Path, Path]:
    """A real ssh-agent holding a new Ed25519 key; the private key file is deleted after
    ``ssh-add``. Returns the agent, its socket and the key's .pub."""
    require_tools(
        "ssh-agent", "ssh-add", "ssh-keygen", "git", how="apt-get install openssh-client git"
    )
    sock = folder / "agent.sock"
    agent = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(sock)],
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        if sock.exists():
            break
        time.sleep(0.05)
    key = folder / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", SIGNER, "-f", str(key)],
                   check=True, env=clean_env())  # fmt: skip
    subprocess.run(["ssh-add", "-q", str(key)], check=True, env=clean_env(SSH_AUTH_SOCK=str(sock)))
    key.unlink()
    return agent, sock, key.with_name(key.name + ".pub")


def walk(folder: Path, hf_home: Path, **settings: str) -> Journey:
    """``OUT=folder/out bash run.sh`` with ``SETTINGS`` (and ``settings`` over them)."""
    agent, sock, pub = start_agent(folder)
    out = folder / "out"
    env = script_env(hf_home, OUT=str(out), SIGN_KEY=str(pub), SSH_AUTH_SOCK=str(sock),
                     **{**SETTINGS, **settings})  # fmt: skip
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(["bash", str(RUN_SH)], env=env, capture_output=True, text=True,
                              timeout=3600, cwd=folder)  # fmt: skip
    finally:
        agent.terminate()
        agent.wait(timeout=10)
    return Journey(out, proc, pub, time.perf_counter() - t0)
