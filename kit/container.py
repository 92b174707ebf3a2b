"""Host-side launcher: build the images and run ``evaluate`` in them (docker SDK).

The docker SDK uses the classic builder, so the Dockerfiles need no BuildKit feature. An
extra CA (``--ca-cert``) and local wheels go into the builder stage's ``build-extra/`` of a
temporary build context, never into the final image.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit import __version__
from kit.errors import ExitCode, KitError
from kit.fsio import atomic_write_json

FLAVORS = ("cpu", "cuda")
DEFAULT_TAG = "repro-kit:{flavor}"
CONTAINER_HF = "/data/hf"
CONTAINER_OUT = "/out/run"
Log = Callable[[str], None]


def _client() -> Any:
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:
        raise KitError(
            "the docker SDK is not installed (pip install docker)", ExitCode.DOCKER
        ) from None
    try:
        client = docker.from_env(version="auto")
        client.ping()
    except DockerException as e:
        raise KitError(
            f"cannot reach the Docker daemon ({str(e).splitlines()[0][:160]}); is "
            "dockerd running and DOCKER_HOST right?",
            ExitCode.DOCKER,
        ) from None
    return client


def source_root(explicit: Path | None = None) -> Path:
    """The repro-kit checkout holding the Dockerfiles."""
    root = Path(explicit) if explicit else Path(__file__).resolve().parent.parent
    if not (root / "Dockerfile.cpu").is_file():
        raise KitError(
            f"no Dockerfile.cpu under {root}; pass --source with a repro-kit checkout",
            ExitCode.NOT_FOUND,
        )
    return root


def _git_revision(root: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
    except OSError:
        out = ""
    return out or f"kit-{__version__}"


@dataclass
class BuildRequest:
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


def _lines(stream: Iterator[dict[str, Any]], log: Log) -> str | None:
    """Relay build output; return the error message if the build failed."""
    for chunk in stream:
        if "stream" in chunk:
            text = chunk["stream"].rstrip("\n")
            if text.strip():
                log(text)
        elif "error" in chunk:
            return str(chunk["error"]).strip()
    return None


def build_image(req: BuildRequest, log: Log) -> dict[str, Any]:
    """Build ``Dockerfile.<flavor>`` and return the image's ID, tag and labels."""
    if req.flavor not in FLAVORS:
        raise KitError(
            f"unknown flavor {req.flavor!r} (cpu or cuda; for Apple GPUs read Dockerfile.mps-note)",
            ExitCode.USAGE,
        )
    root = source_root(req.source)
    client = _client()
    lock = root / "lockfiles" / f"{req.flavor}.txt"
    args = {
        "FLAVOR": req.flavor,
        "GIT_REVISION": _git_revision(root),
        "LOCKFILE_SHA256": hashlib.sha256(lock.read_bytes()).hexdigest(),
        "KIT_VERSION": __version__,
        **req.build_args,
    }
    if req.base_image:
        args["BASE_IMAGE"] = req.base_image
        try:
            args["BASE_IMAGE_ID"] = client.images.get(req.base_image).id
        except Exception:
            args["BASE_IMAGE_ID"] = "pulled-at-build"
    if req.wheels and req.flavor == "cpu":
        args.setdefault("TORCH_INDEX_URL", "")
    tag = req.tag or DEFAULT_TAG.format(flavor=req.flavor)
    with tempfile.TemporaryDirectory(prefix="repro-kit-build-") as work:
        ctx = _context(req, root, Path(work))
        stream = client.api.build(
            path=str(ctx),
            dockerfile=f"Dockerfile.{req.flavor}",
            tag=tag,
            buildargs=args,
            forcerm=True,
            rm=True,
            nocache=req.no_cache,
            decode=True,
            network_mode=req.network,
        )
        error = _lines(stream, log)
    if error:
        raise KitError(f"image build failed: {error.splitlines()[-1][:300]}", ExitCode.DOCKER)
    image = client.images.get(tag)
    return {
        "image_id": image.id,
        "tag": tag,
        "labels": image.labels,
        "size": image.attrs.get("Size"),
    }


@dataclass
class RunRequest:
    image: str = "repro-kit:cpu"
    network: str = "bridge"
    hf_home: Path | None = None
    output: Path = Path("runs/container")
    evaluate_args: list[str] = field(default_factory=list)
    gpus: bool = False
    env: dict[str, str] = field(default_factory=dict)


def image_identity(client: Any, name: str) -> dict[str, Any]:
    from docker.errors import ImageNotFound

    try:
        image = client.images.get(name)
    except ImageNotFound:
        raise KitError(
            f"image {name} not found; build it: repro-kit container build", ExitCode.DOCKER
        ) from None
    return {
        "image_id": image.id,
        "image": name,
        "tags": sorted(image.tags),
        "labels": dict(sorted((image.labels or {}).items())),
        "repo_digests": image.attrs.get("RepoDigests") or [],
    }


def run_evaluate(req: RunRequest, log: Log) -> int:
    """Run ``repro-kit evaluate`` in the image; record the image in run.json; return its code."""
    from docker.types import DeviceRequest

    client = _client()
    identity = image_identity(client, req.image)
    out = Path(req.output).resolve()
    out.mkdir(parents=True, exist_ok=True)
    volumes = {str(out): {"bind": CONTAINER_OUT, "mode": "rw"}}
    env = {"PYTHONUNBUFFERED": "1", **req.env}
    args = ["evaluate", *req.evaluate_args, "--output", CONTAINER_OUT]
    if req.hf_home is not None:
        hf = Path(req.hf_home).resolve()
        if not hf.is_dir():
            raise KitError(f"--hf-home {hf} is not a folder", ExitCode.NOT_FOUND)
        volumes[str(hf)] = {"bind": CONTAINER_HF, "mode": "ro"}
    if req.network == "none" and "--offline" not in args:
        args.append("--offline")
    devices = [DeviceRequest(count=-1, capabilities=[["gpu"]])] if req.gpus else None
    container = client.containers.run(
        req.image,
        command=args,
        volumes=volumes,
        network_mode=req.network,
        environment=env,
        user=f"{os.getuid()}:{os.getgid()}",
        device_requests=devices,
        detach=True,
    )
    try:
        for chunk in container.logs(stream=True, follow=True):
            log(chunk.decode("utf-8", "replace").rstrip("\n"))
        code = int(container.wait().get("StatusCode", 1))
    finally:
        container.remove(force=True)
    run_json = out / "run.json"
    if run_json.exists():
        import json

        record = json.loads(run_json.read_text())
        record["container"] = {
            **identity,
            "network": req.network,
            "gpus": req.gpus,
            "hf_home_mounted_read_only": req.hf_home is not None,
        }
        atomic_write_json(run_json, record)
    return code
