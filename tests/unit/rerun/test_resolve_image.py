"""Which image a container re-run uses, decided against a fake image store (no daemon)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kit.container.choice import ImageAction, RecordedImage, recorded_image, resolve_image
from kit.container.engine import Image
from kit.container.fake import FLAVOR, LOCK, FakeEngine, make_checkout, sha
from kit.errors import ExitCode, KitError

LOCK_TEXT = "torch==2.5.1\n"
RECORDED = "sha256:" + "1" * 64


def _run(image_id: str | None = RECORDED, lock: str | None = None) -> dict[str, Any]:
    run: dict[str, Any] = {"resolved": {"device_kind": "cpu"}}
    if image_id or lock:
        labels = {FLAVOR: "cpu", **({LOCK: lock} if lock else {})}
        run["container"] = {"image_id": image_id, "labels": labels}
    return run


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    return make_checkout(tmp_path / "checkout", LOCK_TEXT)


def _resolve(run: dict[str, Any], store: FakeEngine, root: Path, build: bool = True):
    lines: list[str] = []
    choice = resolve_image(run, {}, lines.append, build=build, store=store, root=root)
    return choice, lines


def test_recorded_image_present_is_used(checkout: Path) -> None:
    store = FakeEngine((Image(RECORDED, ("repro-kit:cpu",), {LOCK: sha(LOCK_TEXT)}),))
    choice, lines = _resolve(_run(lock="f" * 64), store, checkout)
    assert choice.action is ImageAction.USE and choice.image == RECORDED
    assert choice.is_recorded and not store.built and not lines
    assert choice.recorded == RecordedImage(
        image_id=RECORDED, flavor="cpu", lockfile_sha256="f" * 64
    )
    assert choice.to_json() == {
        "action": "use",
        "image": RECORDED,
        "why": "the recorded image ID",
        "recorded": {"image_id": RECORDED, "flavor": "cpu", "lockfile_sha256": "f" * 64},
    }


def test_recorded_image_without_our_labels_is_found_by_id(checkout: Path) -> None:
    store = FakeEngine((Image(RECORDED, ("elsewhere:1",), {}),))
    choice, _ = _resolve(_run(), store, checkout)
    assert choice.image == RECORDED and choice.is_recorded
    assert choice.why == "the recorded image ID"


def test_equivalent_local_image_is_used(checkout: Path) -> None:
    twin = Image("sha256:" + "2" * 64, ("repro-kit:cpu",), {LOCK: sha(LOCK_TEXT), FLAVOR: "cpu"})
    other = Image("sha256:" + "3" * 64, ("repro-kit:cuda",), {LOCK: sha(LOCK_TEXT), FLAVOR: "cuda"})
    store = FakeEngine((other, twin))
    choice, _ = _resolve(_run(lock=sha(LOCK_TEXT)), store, checkout)
    assert choice.action is ImageAction.USE and choice.image == twin.id
    assert not choice.is_recorded
    assert "not present here" in choice.why and "repro-kit:cpu" in choice.why


def test_absent_image_is_rebuilt_from_the_identical_lockfile(checkout: Path) -> None:
    store = FakeEngine()
    choice, lines = _resolve(_run(lock=sha(LOCK_TEXT)), store, checkout)
    ((spec, files),) = store.built
    assert "lockfiles/cpu.txt" in files and "kit/__init__.py" in files
    assert spec.tag == "repro-kit:cpu-rerun" and spec.dockerfile == "Dockerfile.cpu"
    assert spec.build_args["LOCKFILE_SHA256"] == sha(LOCK_TEXT)
    assert choice.action is ImageAction.BUILD and choice.image == store.get(spec.tag).id
    assert not choice.is_recorded and choice.to_json()["action"] == "build"
    assert lines[0].startswith("building repro-kit:cpu-rerun: image sha256:1111")
    assert "Step 1/1 : FROM base" in lines


def test_dry_run_plans_the_build_without_building(checkout: Path) -> None:
    store = FakeEngine()
    choice, lines = _resolve(_run(image_id=None), store, checkout, build=False)
    assert choice.action is ImageAction.BUILD and choice.image == "repro-kit:cpu-rerun"
    assert "the bundle was not made in an image" in choice.why
    assert not store.built and not lines


def test_refused_when_absent_and_the_lockfile_differs(checkout: Path) -> None:
    twin = Image("sha256:" + "2" * 64, ("repro-kit:cpu",), {LOCK: "f" * 64, FLAVOR: "cpu"})
    with pytest.raises(KitError) as e:
        _resolve(_run(lock="e" * 64), FakeEngine((twin,)), checkout)
    assert e.value.code == ExitCode.DOCKER
    assert "lockfiles/cpu.txt sha256 eeeeeeeeeeee" in e.value.message
    assert f"this checkout's is {sha(LOCK_TEXT)[:12]}" in e.value.message


def test_a_checkout_without_dockerfiles_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(KitError) as e:
        _resolve(_run(), FakeEngine(), tmp_path)
    assert e.value.code == ExitCode.NOT_FOUND and "Dockerfile.cpu" in e.value.message


def test_recorded_image_falls_back_to_environment_and_device() -> None:
    env = {"container": {"image": {"flavor": "cuda", "lockfile_sha256": "a" * 64}}}
    assert recorded_image({}, env) == RecordedImage(
        image_id=None, flavor="cuda", lockfile_sha256="a" * 64
    )
    assert recorded_image({}, env).to_json() == {
        "image_id": None,
        "flavor": "cuda",
        "lockfile_sha256": "a" * 64,
    }
    run = {"resolved": {"device_kind": "cuda"}}
    assert recorded_image(run, {}).flavor == "cuda"
    assert recorded_image({}, {}).flavor == "cpu"
