"""Host-side launcher: build the images and run ``evaluate`` in them.

Docker is reached only through ``kit.evaluate.docker_engine`` (``ImageStore`` for builds and
image look-ups, ``ContainerRunner`` for runs); each entry point takes an ``engine`` and
connects to the daemon when given none. The classic builder is used, so the Dockerfiles need
no BuildKit feature. An extra CA (``--ca-cert``) and local wheels go into the builder stage's
``build-extra/`` of a temporary build context, never into the final image.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit import __version__
from kit.errors import ExitCode, KitError
from kit.evaluate.docker_engine import (
    BuildSpec,
    ContainerSpec,
    Engine,
    ImageStore,
    Mount,
    connect,
)
from kit.evaluate.git import git_revision
from kit.fsio import atomic_write_bytes

FLAVORS = ("cpu", "cuda")
DEFAULT_TAG = "repro-kit:{flavor}"
CONTAINER_HF = "/data/hf"
LATEST_TAG = "repro-kit:latest"
CONTAINER_RECORD_ENV = "REPRO_KIT_CONTAINER"  # the launcher's image record, for run.json
INNER_BUNDLE = ".repro-kit-bundle.tar.gz"  # written in the mounted run folder, moved out after
CONTAINER_AGENT = "/run/repro-kit/agent.sock"  # the forwarded ssh-agent socket
CONTAINER_PUB = "/run/repro-kit/signing.pub"  # the public key naming the agent's key
CONTAINER_MODEL = "/model"  # where a local model folder is mounted (read-only)
CONTAINER_OUT = "/out/run"
Log = Callable[[str], None]


def source_root(explicit: Path | None = None) -> Path:
    """The repro-kit checkout holding the Dockerfiles."""
    root = Path(explicit) if explicit else Path(__file__).resolve().parents[2]
    if not (root / "Dockerfile.cpu").is_file():
        raise KitError(
            f"no Dockerfile.cpu under {root}; pass --source with a repro-kit checkout",
            ExitCode.NOT_FOUND,
        )
    return root


def lockfile_sha256(flavor: str, root: Path | None = None) -> str | None:
    """sha256 of the checkout's ``lockfiles/<flavor>.txt``; None if the checkout has none."""
    lock = source_root(root) / "lockfiles" / f"{flavor}.txt"
    return hashlib.sha256(lock.read_bytes()).hexdigest() if lock.is_file() else None


@dataclass
class BuildRequest:
    """What to build (the CLI's ``container build`` options)."""

    flavor: str = "cpu"
    base_image: str | None = None
    tag: str | None = None
    ca_cert: Path | None = None
    wheels: Path | None = None
    network: str | None = None
    source: Path | None = None
    no_cache: bool = False
    build_args: dict[str, str] = field(default_factory=dict)


def _context(req: BuildRequest, root: Path, work: Path) -> Path:
    ctx = work / "ctx"
    ctx.mkdir()
    for name in (f"Dockerfile.{req.flavor}", "pyproject.toml", "README.md"):
        shutil.copy(root / name, ctx / name)
    shutil.copytree(
        root / "kit", ctx / "kit", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    (ctx / "lockfiles").mkdir()
    shutil.copy(root / "lockfiles" / f"{req.flavor}.txt", ctx / "lockfiles")
    extra = ctx / "build-extra"
    (extra / "wheels").mkdir(parents=True)
    if req.ca_cert:
        if not Path(req.ca_cert).is_file():
            raise KitError(f"CA file {req.ca_cert} not found", ExitCode.NOT_FOUND)
        shutil.copy(req.ca_cert, extra / "ca.crt")
    if req.wheels:
        if not Path(req.wheels).is_dir():
            raise KitError(f"wheels folder {req.wheels} not found", ExitCode.NOT_FOUND)
        for whl in Path(req.wheels).glob("*.whl"):
            os.link(whl, extra / "wheels" / whl.name) if _same_fs(whl, extra) else shutil.copy(
                whl, extra / "wheels" / whl.name
            )
    return ctx


def _same_fs(a: Path, b: Path) -> bool:
    try:
        return a.stat().st_dev == b.stat().st_dev
    except OSError:
        return False


@dataclass(frozen=True)
class BuildInfo:
    """The image a build made: its ID, tag, labels and size in bytes."""

    image_id: str
    tag: str
    labels: dict[str, str]
    size: int | None

    def to_json(self) -> dict[str, Any]:
        """The fields as a plain dict."""
        return {
            "image_id": self.image_id,
            "tag": self.tag,
            "labels": self.labels,
            "size": self.size,
        }


def build_image(req: BuildRequest, log: Log, engine: ImageStore | None = None) -> BuildInfo:
    """Build ``Dockerfile.<flavor>`` of the checkout and return the image's ID, tag and labels."""
    if req.flavor not in FLAVORS:
        raise KitError(
            f"unknown flavor {req.flavor!r} (cpu or cuda; for Apple GPUs read Dockerfile.mps-note)",
            ExitCode.USAGE,
        )
    root = source_root(req.source)
    store = engine if engine is not None else connect()
    lock = root / "lockfiles" / f"{req.flavor}.txt"
    args = {
        "FLAVOR": req.flavor,
        "GIT_REVISION": git_revision(root) or f"kit-{__version__}",
        "LOCKFILE_SHA256": hashlib.sha256(lock.read_bytes()).hexdigest(),
        "KIT_VERSION": __version__,
        **req.build_args,
    }
    if req.base_image:
        args["BASE_IMAGE"] = req.base_image
        base = store.get(req.base_image)
        args["BASE_IMAGE_ID"] = base.id if base else "pulled-at-build"
    if req.wheels and req.flavor == "cpu":
        args.setdefault("TORCH_INDEX_URL", "")
    tag = req.tag or DEFAULT_TAG.format(flavor=req.flavor)
    # the default CPU image is also repro-kit:latest, so `docker run repro-kit ...` finds it
    also = (LATEST_TAG,) if req.tag is None and req.flavor == "cpu" else ()
    with tempfile.TemporaryDirectory(prefix="repro-kit-build-") as work:
        ctx = _context(req, root, Path(work))
        spec = BuildSpec(
            ctx, f"Dockerfile.{req.flavor}", tag, args, req.no_cache, req.network, also
        )
        image = store.build(spec, log)
    return BuildInfo(image_id=image.id, tag=tag, labels=image.labels, size=image.size)


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


def image_identity(store: ImageStore, name: str) -> dict[str, Any]:
    """What run.json records of image ``name``; KitError (DOCKER) if it is not here."""
    image = store.get(name)
    if image is None:
        raise KitError(
            f"image {name} not found; build it: repro-kit container build", ExitCode.DOCKER
        )
    return {
        "image_id": image.id,
        "image": name,
        "tags": sorted(image.tags),
        "labels": dict(sorted(image.labels.items())),
        "repo_digests": list(image.repo_digests),
    }


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
    if req.bundle is None:
        args.append("--no-bundle")
    else:
        args += ["--bundle", f"{CONTAINER_OUT}/{INNER_BUNDLE}"]
        mounts += _agent_mounts(req, args, env)
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
