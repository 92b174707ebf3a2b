"""The Docker daemon behind two small interfaces: ``ImageStore`` and ``ContainerRunner``.

``kit.container.image``, ``launch`` and ``choice`` talk to Docker only through these. ``connect()``
returns ``DockerEngine``, the docker-SDK implementation of both (the SDK is imported only
there); unit tests hand in a fake instead, so image choice is testable without a daemon.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from kit.errors import ExitCode, KitError

Log = Callable[[str], None]


@dataclass(frozen=True)
class Image:
    """A local image as the kit sees it."""

    id: str
    tags: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    size: int | None = None
    repo_digests: tuple[str, ...] = ()


@dataclass(frozen=True)
class BuildSpec:
    """One image build: a prepared context folder, its Dockerfile and the build arguments."""

    context: Path
    dockerfile: str
    tag: str
    build_args: dict[str, str] = field(default_factory=dict)
    no_cache: bool = False
    network: str | None = None
    also_tags: tuple[str, ...] = ()  # further names for the built image (repro-kit:latest)


@dataclass(frozen=True)
class Mount:
    """A host folder bound into a container."""

    source: Path
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class ContainerSpec:
    """One container run: image, command, mounts, network, environment, user, GPUs."""

    image: str
    command: list[str]
    mounts: list[Mount] = field(default_factory=list)
    network: str = "bridge"
    environment: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    gpus: bool = False


class ImageStore(Protocol):
    """The local images: find them by label, look one up, build one."""

    def find(self, label: str) -> list[Image]:
        """Images carrying the label ``label`` (any value)."""
        ...

    def get(self, ref: str) -> Image | None:
        """The image named or identified by ``ref``; None if there is no such image."""
        ...

    def build(self, spec: BuildSpec, log: Log) -> Image:
        """Build ``spec``, relaying the builder's output to ``log``; raise KitError on failure."""
        ...


class ContainerRunner(Protocol):
    """Runs a container to its end."""

    def run(self, spec: ContainerSpec, log: Log) -> int:
        """Run ``spec``, relay its output to ``log``, remove it; return its exit status."""
        ...


class Engine(ImageStore, ContainerRunner, Protocol):
    """Both: what ``container.run_evaluate`` needs (look the image up, then run it)."""


class DockerEngine:
    """``ImageStore`` and ``ContainerRunner`` on a docker-SDK client (see ``connect``)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def find(self, label: str) -> list[Image]:
        """Images carrying the label ``label`` (any value)."""
        return [_image(i) for i in self.client.images.list(filters={"label": label})]

    def get(self, ref: str) -> Image | None:
        """The image named or identified by ``ref``; None if the daemon has no such image."""
        from docker.errors import APIError, NotFound

        try:
            return _image(self.client.images.get(ref))
        except NotFound:
            return None
        except APIError as e:
            if e.is_client_error():  # e.g. a malformed reference: no such image either
                return None
            raise KitError(f"docker: {_first_line(e)}", ExitCode.DOCKER) from None

    def build(self, spec: BuildSpec, log: Log) -> Image:
        """Build with the classic builder; relay its output; return the tagged image."""
        stream = self.client.api.build(
            path=str(spec.context),
            dockerfile=spec.dockerfile,
            tag=spec.tag,
            buildargs=spec.build_args,
            forcerm=True,
            rm=True,
            nocache=spec.no_cache,
            decode=True,
            network_mode=spec.network,
        )
        error = _relay(stream, log)
        if error:
            raise KitError(f"image build failed: {error.splitlines()[-1][:300]}", ExitCode.DOCKER)
        built = self.client.images.get(spec.tag)
        for ref in spec.also_tags:
            repo, _, tag = ref.rpartition(":")
            built.tag(repo, tag)
        return _image(self.client.images.get(spec.tag))

    def run(self, spec: ContainerSpec, log: Log) -> int:
        """Run detached, follow the logs, wait, then remove the container; return its status."""
        from docker.types import DeviceRequest

        volumes = {
            str(m.source): {"bind": m.target, "mode": "ro" if m.read_only else "rw"}
            for m in spec.mounts
        }
        devices = [DeviceRequest(count=-1, capabilities=[["gpu"]])] if spec.gpus else None
        container = self.client.containers.run(
            spec.image,
            command=spec.command,
            volumes=volumes,
            network_mode=spec.network,
            environment=spec.environment,
            user=spec.user,
            device_requests=devices,
            detach=True,
        )
        try:
            for chunk in container.logs(stream=True, follow=True):
                log(chunk.decode("utf-8", "replace").rstrip("\n"))
            return int(container.wait().get("StatusCode", 1))
        except Exception as e:  # the daemon went away (connection reset, API error)
            if isinstance(e, KitError):
                raise
            raise KitError(
                f"lost the Docker daemon while the container ran ({_first_line(e)[:160]})",
                ExitCode.DOCKER,
            ) from None
        finally:
            with contextlib.suppress(Exception):  # gone with its daemon: nothing to clean
                container.remove(force=True)


def connect() -> DockerEngine:
    """A ``DockerEngine`` on the daemon of the environment (DOCKER_HOST); KitError if none."""
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
            f"cannot reach the Docker daemon ({_first_line(e)[:160]}); is "
            "dockerd running and DOCKER_HOST right?",
            ExitCode.DOCKER,
        ) from None
    return DockerEngine(client)


def _image(img: Any) -> Image:
    return Image(
        id=img.id,
        tags=tuple(img.tags or ()),
        labels=dict(img.labels or {}),
        size=img.attrs.get("Size"),
        repo_digests=tuple(img.attrs.get("RepoDigests") or ()),
    )


def _first_line(e: BaseException) -> str:
    return (str(e).splitlines() or [""])[0]


def _relay(stream: Iterator[dict[str, Any]], log: Log) -> str | None:
    """Relay build output; return the error message if the build failed."""
    for chunk in stream:
        if "stream" in chunk:
            text = chunk["stream"].rstrip("\n")
            if text.strip():
                log(text)
        elif "error" in chunk:
            return str(chunk["error"]).strip()
    return None
