"""Run ``repro-kit evaluate`` inside an image, and bring its bundle out to the host.

The run folder is mounted at ``/out/run``, an HF cache read-only at ``/data/hf``, a local
model folder read-only at ``/model``; signing goes through the host's ssh-agent (only its
socket and the public key are mounted). The image's record reaches run.json through
``CONTAINER_RECORD_ENV``; the host paths of the mounts (and of the bundle, moved out after the
run) through ``kit.runfolder.HOST_PATHS_ENV``, so the run prints the paths the user can
open. Docker is reached only through ``kit.container.engine.Engine``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kit.container.engine import ContainerSpec, Engine, Mount, connect
from kit.container.image import image_identity
from kit.errors import ExitCode, KitError
from kit.fsio import atomic_write_bytes
from kit.runfolder import HOST_PATHS_ENV, HOST_RESULTS_ENV

CONTAINER_HF = "/data/hf"
CONTAINER_RECORD_ENV = "REPRO_KIT_CONTAINER"  # the launcher's image record, for run.json
INNER_BUNDLE = ".repro-kit-bundle.tar.gz"  # written in the mounted run folder, moved out after
CONTAINER_AGENT = "/run/repro-kit/agent.sock"  # the forwarded ssh-agent socket
CONTAINER_PUB = "/run/repro-kit/signing.pub"  # the public key naming the agent's key
CONTAINER_MODEL = "/model"  # where a local model folder is mounted (read-only)
CONTAINER_OUT = "/out/run"
Log = Callable[[str], None]


@dataclass
class RunRequest:
    """What to run (the CLI's ``container evaluate`` options; ``evaluate_args`` pass through)."""

    image: str = "repro-kit:cpu"
    network: str = "bridge"
    hf_home: Path | None = None
    output: Path = Path("runs/container")
    evaluate_args: list[str] = field(default_factory=list)
    gpus: bool = False
    env: dict[str, str] = field(default_factory=dict)
    model_dir: Path | None = None  # a local model folder, mounted read-only at /model
    bundle: Path | None = None  # where the bundle made inside lands on the host (None: none)
    sign_pub: Path | None = None  # a public key: the host's ssh-agent signs (socket forwarded)
    agent_socket: Path | None = None  # the host's SSH_AUTH_SOCK (only the socket is mounted)
    host_results: str | None = None  # the results checkout the printed next step names


def run_evaluate(req: RunRequest, log: Log, engine: Engine | None = None) -> int:
    """Run ``repro-kit evaluate`` in the image; record the image in run.json; return its code."""
    engine = engine if engine is not None else connect()
    identity = image_identity(engine, req.image)
    out = Path(req.output).resolve()
    out.mkdir(parents=True, exist_ok=True)
    mounts = [Mount(out, CONTAINER_OUT)]
    args = ["evaluate", *req.evaluate_args, "--output", CONTAINER_OUT]
    if req.hf_home is not None:
        hf = Path(req.hf_home).resolve()
        if not hf.is_dir():
            raise KitError(f"--hf-home {hf} is not a folder", ExitCode.NOT_FOUND)
        mounts.append(Mount(hf, CONTAINER_HF, read_only=True))
    if req.model_dir is not None:
        mounts.append(Mount(Path(req.model_dir).resolve(), CONTAINER_MODEL, read_only=True))
    if req.network == "none" and "--offline" not in args:
        args.append("--offline")
    env = {"PYTHONUNBUFFERED": "1", "REPRO_KIT_IN_CONTAINER": "1", **req.env}
    record = {
        **identity,
        "network": req.network,
        "gpus": req.gpus,
        "hf_home_mounted_read_only": req.hf_home is not None,
        **({"model_dir_mounted_read_only": CONTAINER_MODEL} if req.model_dir else {}),
    }
    env[CONTAINER_RECORD_ENV] = json.dumps(record, sort_keys=True)  # run.json records it
    inner = out / INNER_BUNDLE
    host = {CONTAINER_OUT: str(out)}  # what the run prints, as the host sees it
    if req.model_dir is not None:
        host[CONTAINER_MODEL] = str(Path(req.model_dir).resolve())
    if req.bundle is None:
        args.append("--no-bundle")
    else:
        args += ["--bundle", f"{CONTAINER_OUT}/{INNER_BUNDLE}"]
        host[f"{CONTAINER_OUT}/{INNER_BUNDLE}"] = str(Path(req.bundle).resolve())  # moved there
        mounts += _agent_mounts(req, args, env)
        if req.sign_pub is not None:
            host[CONTAINER_PUB] = str(Path(req.sign_pub).resolve())
    env[HOST_PATHS_ENV] = json.dumps(host, sort_keys=True)
    if req.host_results:
        env[HOST_RESULTS_ENV] = req.host_results
    spec = ContainerSpec(
        image=req.image,
        command=args,
        mounts=mounts,
        network=req.network,
        environment=env,
        user=f"{os.getuid()}:{os.getgid()}",
        gpus=req.gpus,
    )
    resumable = f"{out} is resumable: run the same command again"
    try:
        code = engine.run(spec, log)
    except KitError as e:
        raise KitError(f"{e.message}; {resumable} once dockerd is back", e.code) from None
    if req.bundle is not None and inner.is_file():
        _move(inner, Path(req.bundle))
    if code > 128:  # killed from outside (docker kill, the OOM killer): not the kit's own code
        name = _signal_name(code - 128)
        raise KitError(
            f"the container was killed ({name}, exit {code}); {resumable}", ExitCode.DOCKER
        )
    return code


def _agent_mounts(req: RunRequest, args: list[str], env: dict[str, str]) -> list[Mount]:
    """Forward the host's ssh-agent socket (only the socket) and the public key to sign with."""
    if req.sign_pub is None:
        args.append("--no-sign")
        return []
    sock = req.agent_socket
    if sock is None or not Path(sock).exists():
        raise KitError(
            "signing in the container goes through ssh-agent, and SSH_AUTH_SOCK names no "
            "socket here (start one: eval $(ssh-agent); ssh-add KEY)",
            ExitCode.KEY_ERROR,
        )
    env["SSH_AUTH_SOCK"] = CONTAINER_AGENT
    args += ["--sign", CONTAINER_PUB]
    return [
        Mount(Path(sock).resolve(), CONTAINER_AGENT),
        Mount(Path(req.sign_pub).resolve(), CONTAINER_PUB, read_only=True),
    ]


def _move(src: Path, dest: Path) -> None:
    """Move the bundle made inside the container to where the user wants it (atomically)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(src, dest)
    except OSError:  # another filesystem: copy, then replace
        atomic_write_bytes(dest, src.read_bytes())
        src.unlink()


def _signal_name(number: int) -> str:
    import signal

    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
