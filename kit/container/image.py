"""Build the kit's images from a checkout, and what a run records of an image.

Docker is reached only through ``kit.container.engine.ImageStore``; ``build_image`` connects
to the daemon when given no store. The classic builder is used, so the Dockerfiles need no
BuildKit feature. An extra CA (``--ca-cert``) and local wheels go into the builder stage's
``build-extra/`` of a temporary build context, never into the final image. The labels the
Dockerfiles set (``LOCK_LABEL``, ``FLAVOR_LABEL``) let a re-run find an equivalent image.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit import __version__
from kit.container.engine import BuildSpec, ImageStore, connect
from kit.errors import ExitCode, KitError
from kit.machine.git import git_revision

FLAVORS = ("cpu", "cuda")
DEFAULT_TAG = "repro-kit:{flavor}"
LATEST_TAG = "repro-kit:latest"
LOCK_LABEL = "dev.repro-kit.lockfile-sha256"  # the Dockerfiles' labels (image choice reads them)
FLAVOR_LABEL = "dev.repro-kit.flavor"
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
