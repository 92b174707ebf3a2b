"""Which image a container re-run uses: the bundle's own, an equivalent one, or a rebuild.

``recorded_image`` reads what the bundle records (``RecordedImage``: image ID, flavor,
lockfile hash); ``choose_image`` decides from what the image store holds (pure: an
``ImageChoice`` whose ``action`` is ``ImageAction.USE`` or ``BUILD``); ``resolve_image`` asks
the store and builds when the decision says so. ``ImageChoice.to_json`` is the plan's
``image`` record.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any

from kit.container.engine import Image, ImageStore, connect
from kit.container.image import (
    FLAVOR_LABEL,
    LOCK_LABEL,
    BuildRequest,
    build_image,
    lockfile_sha256,
)
from kit.errors import ExitCode, KitError

Log = Callable[[str], None]


class ImageAction(Enum):
    """Use an image that is present, or build one."""

    USE = "use"
    BUILD = "build"


@dataclass(frozen=True)
class RecordedImage:
    """What the bundle records of its image: ID (None: not made in one), flavor, lockfile."""

    image_id: str | None
    flavor: str
    lockfile_sha256: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "image_id": self.image_id,
            "flavor": self.flavor,
            "lockfile_sha256": self.lockfile_sha256,
        }


@dataclass(frozen=True)
class ImageChoice:
    """The image a container re-run uses, why, and what the bundle records.

    ``is_recorded``: it is the very image the bundle records (by ID); anything else is an
    equivalent or a rebuild, which the plan notes.
    """

    action: ImageAction
    image: str
    why: str
    recorded: RecordedImage
    is_recorded: bool = False

    def to_json(self) -> dict[str, Any]:
        """As printed under ``rerun.plan.image`` and recorded in a review's run.json."""
        return {
            "action": self.action.value,
            "image": self.image,
            "why": self.why,
            "recorded": self.recorded.to_json(),
        }


def recorded_image(run: Mapping[str, Any], env: Mapping[str, Any]) -> RecordedImage:
    """Image ID, flavor and lockfile hash the bundle records (None where it does not)."""
    c = run.get("container") or {}
    labels = c.get("labels") or {}
    info = ((env.get("container") or {}).get("image")) or {}
    kind = (run.get("resolved") or {}).get("device_kind") or "cpu"
    return RecordedImage(
        image_id=c.get("image_id"),
        flavor=labels.get(FLAVOR_LABEL)
        or info.get("flavor")
        or ("cuda" if kind == "cuda" else "cpu"),
        lockfile_sha256=labels.get(LOCK_LABEL) or info.get("lockfile_sha256"),
    )


def choose_image(
    recorded: RecordedImage, local: Sequence[Image], checkout_lock: str | None
) -> ImageChoice:
    """Use the recorded image if present, else an equivalent local one, else build; or refuse."""
    by_id = {img.id: img for img in local}
    if recorded.image_id and recorded.image_id in by_id:
        return ImageChoice(
            ImageAction.USE, recorded.image_id, "the recorded image ID", recorded, is_recorded=True
        )
    want = recorded.lockfile_sha256
    flavor = recorded.flavor
    where = (
        f"image {recorded.image_id[:19]} is not present here"
        if recorded.image_id
        else "the bundle was not made in an image"
    )
    if want and checkout_lock and want != checkout_lock:
        raise KitError(
            f"cannot re-run in the bundle's image: {where}, and it was built from lockfiles/"
            f"{flavor}.txt sha256 {want[:12]}, this checkout's is {checkout_lock[:12]}; a rebuild "
            "would not be the same image (check out the bundle's kit revision, or load its image)",
            ExitCode.DOCKER,
        )
    want = want or checkout_lock
    for img in sorted(local, key=lambda i: i.id):
        labels = img.labels or {}
        if labels.get(LOCK_LABEL) == want and labels.get(FLAVOR_LABEL) == flavor:
            return ImageChoice(
                ImageAction.USE,
                img.id,
                f"{where}; local image {', '.join(img.tags or (img.id[:19],))} "
                f"has the same flavor ({flavor}) and lockfile sha256",
                recorded,
            )
    return ImageChoice(
        ImageAction.BUILD,
        f"repro-kit:{flavor}-rerun",
        f"{where}; rebuilding {flavor} from this checkout's identical lockfile",
        recorded,
    )


def resolve_image(
    run: Mapping[str, Any],
    env: Mapping[str, Any],
    log: Log,
    build: bool = True,
    store: ImageStore | None = None,
    root: Path | None = None,
) -> ImageChoice:
    """The image a container re-run uses (``choose_image`` on what ``store`` holds).

    Builds it from the checkout (``root``, default: this one) when needed and ``build``; the
    choice carries ``recorded``, what the bundle records. ``store`` defaults to the Docker
    daemon.
    """
    if store is None:
        store = connect()
    recorded = recorded_image(run, env)
    checkout = lockfile_sha256(recorded.flavor, root)
    images = store.find(LOCK_LABEL)
    if recorded.image_id and recorded.image_id not in {i.id for i in images}:
        present = store.get(recorded.image_id)  # present, but without our labels
        if present is not None:
            images.append(present)
    choice = choose_image(recorded, images, checkout)
    if choice.action is ImageAction.BUILD and build:
        log(f"building {choice.image}: {choice.why}")
        req = BuildRequest(flavor=recorded.flavor, tag=choice.image, source=root)
        info = build_image(req, log, engine=store)
        choice = replace(choice, image=info.image_id)
    return choice
