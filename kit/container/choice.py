"""Which image a container re-run uses: the bundle's own, an equivalent one, or a rebuild.

``recorded_image`` reads what the bundle records (image ID, flavor, lockfile hash);
``choose_image`` decides from what the image store holds (pure); ``resolve_image`` asks the
store and builds when the decision says so.
"""

from __future__ import annotations

from collections.abc import Callable
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


def recorded_image(run: dict[str, Any], env: dict[str, Any]) -> dict[str, Any]:
    """Image ID, flavor and lockfile hash the bundle records (None where it does not)."""
    c = run.get("container") or {}
    labels = c.get("labels") or {}
    info = ((env.get("container") or {}).get("image")) or {}
    kind = (run.get("resolved") or {}).get("device_kind") or "cpu"
    return {
        "image_id": c.get("image_id"),
        "flavor": labels.get(FLAVOR_LABEL)
        or info.get("flavor")
        or ("cuda" if kind == "cuda" else "cpu"),
        "lockfile_sha256": labels.get(LOCK_LABEL) or info.get("lockfile_sha256"),
    }


def choose_image(
    recorded: dict[str, Any], local: list[dict[str, Any]], checkout_lock: str | None
) -> dict[str, Any]:
    """Use the recorded image if present, else an equivalent local one, else build; or refuse."""
    by_id = {img["id"]: img for img in local}
    if recorded["image_id"] and recorded["image_id"] in by_id:
        return {"action": "use", "image": recorded["image_id"], "why": "the recorded image ID"}
    want = recorded["lockfile_sha256"]
    flavor = recorded["flavor"]
    where = (
        f"image {recorded['image_id'][:19]} is not present here"
        if recorded["image_id"]
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
    for img in sorted(local, key=lambda i: i["id"]):
        labels = img.get("labels") or {}
        if labels.get(LOCK_LABEL) == want and labels.get(FLAVOR_LABEL) == flavor:
            return {
                "action": "use",
                "image": img["id"],
                "why": f"{where}; local image {', '.join(img.get('tags') or [img['id'][:19]])} "
                f"has the same flavor ({flavor}) and lockfile sha256",
            }
    return {
        "action": "build",
        "image": f"repro-kit:{flavor}-rerun",
        "why": f"{where}; rebuilding {flavor} from this checkout's identical lockfile",
    }


def resolve_image(
    run: dict[str, Any],
    env: dict[str, Any],
    log: Log,
    build: bool = True,
    store: ImageStore | None = None,
    root: Path | None = None,
) -> dict[str, Any]:
    """The image a container re-run uses (``choose_image`` on what ``store`` holds).

    Builds it from the checkout (``root``, default: this one) when needed and ``build``; the
    returned choice carries ``recorded``, what the bundle records. ``store`` defaults to the
    Docker daemon.
    """
    if store is None:
        store = connect()
    recorded = recorded_image(run, env)
    checkout = lockfile_sha256(recorded["flavor"], root)
    images = store.find(LOCK_LABEL)
    if recorded["image_id"] and recorded["image_id"] not in {i.id for i in images}:
        present = store.get(recorded["image_id"])  # present, but without our labels
        if present is not None:
            images.append(present)
    choice = choose_image(recorded, [_as_local(i) for i in images], checkout)
    if choice["action"] == "build" and build:
        log(f"building {choice['image']}: {choice['why']}")
        req = BuildRequest(flavor=recorded["flavor"], tag=choice["image"], source=root)
        info = build_image(req, log, engine=store)
        choice = {**choice, "image": info.image_id}
    return {**choice, "recorded": recorded}


def _as_local(image: Image) -> dict[str, Any]:
    return {"id": image.id, "tags": list(image.tags), "labels": dict(image.labels)}
