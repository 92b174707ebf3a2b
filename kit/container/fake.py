"""An in-memory Docker: ``ImageStore`` and ``ContainerRunner`` without a daemon.

For the unit tests of the layers above the engine interface (image choice, builds, the
container launcher) and for anyone trying them without Docker; ``make_checkout`` lays out
the least a build needs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from kit.container.engine import BuildSpec, ContainerSpec, Image
from kit.container.image import FLAVOR_LABEL, LOCK_LABEL
from kit.errors import ExitCode, KitError

LOCK = LOCK_LABEL
FLAVOR = FLAVOR_LABEL


class FakeEngine:
    """Holds images by ID; ``build`` labels the new image as the Dockerfiles do; ``run``
    records the spec and calls ``on_run`` (to write a run folder) before returning ``status``."""

    def __init__(
        self,
        images: tuple[Image, ...] = (),
        status: int = 0,
        on_run: Callable[[ContainerSpec], None] | None = None,
    ) -> None:
        self.images = {i.id: i for i in images}
        self.status = status
        self.on_run = on_run
        self.built: list[tuple[BuildSpec, list[str]]] = []  # spec, files of the context
        self.ran: list[ContainerSpec] = []

    def find(self, label: str) -> list[Image]:
        """Images carrying ``label``."""
        return [i for i in self.images.values() if label in i.labels]

    def get(self, ref: str) -> Image | None:
        return self.images.get(ref) or next(
            (i for i in self.images.values() if ref in i.tags), None
        )

    def build(self, spec: BuildSpec, log: Callable[[str], None]) -> Image:
        files = sorted(str(p.relative_to(spec.context)) for p in spec.context.rglob("*"))
        self.built.append((spec, files))
        if "FAIL" in spec.build_args:
            raise KitError("image build failed: boom", ExitCode.DOCKER)
        log(f"Step 1/1 : FROM {spec.build_args.get('BASE_IMAGE', 'base')}")
        labels = {LOCK: spec.build_args["LOCKFILE_SHA256"], FLAVOR: spec.build_args["FLAVOR"]}
        image = Image(
            id="sha256:" + hashlib.sha256(spec.tag.encode()).hexdigest(),
            tags=(spec.tag, *spec.also_tags),
            labels=labels,
            size=123_000_000,
        )
        self.images[image.id] = image
        return image

    def run(self, spec: ContainerSpec, log: Callable[[str], None]) -> int:
        self.ran.append(spec)
        if self.on_run:
            self.on_run(spec)
        log("evaluate: done")
        return self.status


def make_checkout(root: Path, lock_text: str = "torch==2.5.1\n") -> Path:
    """A minimal repro-kit checkout: Dockerfiles, pyproject, README, kit/ and lockfiles/."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("Dockerfile.cpu", "Dockerfile.cuda", "pyproject.toml", "README.md"):
        (root / name).write_text(f"# {name}\n")
    (root / "kit").mkdir()
    (root / "kit" / "__init__.py").write_text("")
    (root / "kit" / "__pycache__").mkdir()
    (root / "kit" / "__pycache__" / "x.pyc").write_bytes(b"")
    (root / "lockfiles").mkdir()
    for flavor in ("cpu", "cuda"):
        (root / "lockfiles" / f"{flavor}.txt").write_text(lock_text)
    return root


def sha(text: str) -> str:
    """sha256 hex of ``text`` (a lockfile's hash, as the image labels carry it)."""
    return hashlib.sha256(text.encode()).hexdigest()
