"""kit.evaluate.container against a fake engine: build arguments, context, mounts, run.json."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kit import __version__
from kit.container.engine import ContainerSpec, Image, Mount
from kit.container.fake import FakeEngine, make_checkout, sha
from kit.container.image import (
    BuildInfo,
    BuildRequest,
    build_image,
    image_identity,
    lockfile_sha256,
)
from kit.container.launch import (
    CONTAINER_AGENT,
    CONTAINER_HF,
    CONTAINER_OUT,
    CONTAINER_PUB,
    CONTAINER_RECORD_ENV,
    INNER_BUNDLE,
    RunRequest,
    run_evaluate,
)
from kit.errors import ExitCode, KitError
from kit.runfolder import HOST_PATHS_ENV as PATHS


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    return make_checkout(tmp_path / "checkout")


def test_build_passes_identity_arguments_and_a_clean_context(checkout: Path) -> None:
    base = Image("sha256:" + "b" * 64, ("local/python:3.11-slim",))
    store = FakeEngine((base,))
    lines: list[str] = []
    req = BuildRequest("cpu", base_image=base.tags[0], source=checkout, wheels=checkout / "kit")
    info = build_image(req, lines.append, engine=store)
    ((spec, files),) = store.built
    assert spec.tag == "repro-kit:cpu" and spec.dockerfile == "Dockerfile.cpu"
    assert spec.also_tags == ("repro-kit:latest",)  # `docker run repro-kit ...` finds it
    assert spec.build_args["GIT_REVISION"] == f"kit-{__version__}"  # not a git checkout
    assert spec.build_args["LOCKFILE_SHA256"] == sha("torch==2.5.1\n")
    assert spec.build_args["BASE_IMAGE_ID"] == base.id
    assert spec.build_args["TORCH_INDEX_URL"] == ""  # local wheels for cpu
    assert "lockfiles/cpu.txt" in files and "lockfiles/cuda.txt" not in files
    assert "build-extra/wheels" in files and not any("__pycache__" in f for f in files)
    assert isinstance(info, BuildInfo) and info.tag == "repro-kit:cpu"
    assert info.image_id == store.get("repro-kit:cpu").id and info.size == 123_000_000
    assert lines == ["Step 1/1 : FROM local/python:3.11-slim"]


def test_build_with_an_unknown_base_image_records_pulled_at_build(checkout: Path) -> None:
    store = FakeEngine()
    build_image(BuildRequest("cuda", base_image="x:1", source=checkout), print, engine=store)
    spec = store.built[0][0]
    assert spec.build_args["BASE_IMAGE_ID"] == "pulled-at-build" and spec.tag == "repro-kit:cuda"
    assert spec.also_tags == ()  # latest is the CPU image
    build_image(BuildRequest("cpu", tag="mine:1", source=checkout), print, engine=store)
    assert store.built[-1][0].also_tags == ()  # an explicit tag is the only name


def test_build_refuses_unknown_flavor_and_relays_failure(checkout: Path) -> None:
    with pytest.raises(KitError) as e:
        build_image(BuildRequest("mps", source=checkout), print, engine=FakeEngine())
    assert e.value.code == ExitCode.USAGE
    req = BuildRequest("cpu", source=checkout, build_args={"FAIL": "1"})
    with pytest.raises(KitError) as e:
        build_image(req, print, engine=FakeEngine())
    assert e.value.code == ExitCode.DOCKER and "image build failed" in e.value.message


def test_lockfile_sha256(checkout: Path) -> None:
    assert lockfile_sha256("cpu", checkout) == sha("torch==2.5.1\n")
    assert lockfile_sha256("rocm", checkout) is None


def test_image_identity_of_a_missing_image() -> None:
    with pytest.raises(KitError) as e:
        image_identity(FakeEngine(), "repro-kit:does-not-exist")
    assert e.value.code == ExitCode.DOCKER and "not found; build it" in e.value.message


def test_run_mounts_output_and_cache_and_records_the_image(tmp_path: Path) -> None:
    image = Image("sha256:" + "c" * 64, ("repro-kit:cpu",), {"b": "2", "a": "1"})
    out, hf = tmp_path / "out", tmp_path / "hf"
    hf.mkdir()

    def write_run(spec: ContainerSpec) -> None:  # the kit in the image records the launcher's
        record = json.loads(spec.environment[CONTAINER_RECORD_ENV])
        (out / "run.json").write_text(json.dumps({"tasks": [], "container": record}))

    store = FakeEngine((image,), status=0, on_run=write_run)
    lines: list[str] = []
    req = RunRequest("repro-kit:cpu", "none", hf, out, ["m", "--tasks", "STS12"])
    assert run_evaluate(req, lines.append, engine=store) == 0
    (spec,) = store.ran
    # --network none: evaluate runs offline; no bundle asked for
    assert spec.command == [
        "evaluate",
        "m",
        "--tasks",
        "STS12",
        "--output",
        CONTAINER_OUT,
        "--offline",
        "--no-bundle",
    ]
    assert spec.mounts == [
        Mount(out.resolve(), CONTAINER_OUT),
        Mount(hf.resolve(), CONTAINER_HF, read_only=True),
    ]
    assert spec.user == f"{os.getuid()}:{os.getgid()}" and not spec.gpus
    env = {k: v for k, v in spec.environment.items() if k not in (CONTAINER_RECORD_ENV, PATHS)}
    assert env == {"PYTHONUNBUFFERED": "1", "REPRO_KIT_IN_CONTAINER": "1"}
    assert json.loads(spec.environment[PATHS]) == {CONTAINER_OUT: str(out.resolve())}  # host's
    record = json.loads((out / "run.json").read_text())["container"]
    assert record["image_id"] == image.id and record["network"] == "none"
    assert list(record["labels"]) == ["a", "b"] and record["hf_home_mounted_read_only"]
    assert lines == ["evaluate: done"]


def test_signing_forwards_only_the_agent_socket_and_moves_the_bundle_out(tmp_path: Path) -> None:
    image = Image("sha256:" + "c" * 64, ("repro-kit:cpu",))
    out, sock, pub = tmp_path / "run", tmp_path / "agent.sock", tmp_path / "id.pub"
    sock.write_text("")  # stands for the socket
    pub.write_text("ssh-ed25519 AAAA test\n")

    def write_bundle(spec: ContainerSpec) -> None:
        (out / INNER_BUNDLE).write_bytes(b"bundle")

    store = FakeEngine((image,), status=0, on_run=write_bundle)
    dest = tmp_path / "run.tar.gz"
    req = RunRequest(
        "repro-kit:cpu", output=out, evaluate_args=["m"], bundle=dest, sign_pub=pub,
        agent_socket=sock,
    )  # fmt: skip
    assert run_evaluate(req, print, engine=store) == 0
    (spec,) = store.ran
    assert spec.command[-4:] == [
        "--bundle",
        f"{CONTAINER_OUT}/{INNER_BUNDLE}",
        "--sign",
        CONTAINER_PUB,
    ]
    assert Mount(sock.resolve(), CONTAINER_AGENT) in spec.mounts
    assert Mount(pub.resolve(), CONTAINER_PUB, read_only=True) in spec.mounts
    assert spec.environment["SSH_AUTH_SOCK"] == CONTAINER_AGENT
    assert len(spec.mounts) == 3  # the run folder, the socket, the public key: nothing else
    assert json.loads(spec.environment[PATHS]) == {  # what the run prints, as the host sees it
        CONTAINER_OUT: str(out.resolve()),
        f"{CONTAINER_OUT}/{INNER_BUNDLE}": str(dest.resolve()),
        CONTAINER_PUB: str(pub.resolve()),
    }
    assert dest.read_bytes() == b"bundle" and not (out / INNER_BUNDLE).exists()
    with pytest.raises(KitError) as e:  # no agent: refused before the container starts
        run_evaluate(RunRequest("repro-kit:cpu", output=out, bundle=dest, sign_pub=pub), print,
                     engine=store)  # fmt: skip
    assert e.value.code == ExitCode.KEY_ERROR and len(store.ran) == 1


def test_run_status_is_returned_and_a_missing_hf_home_refused(tmp_path: Path) -> None:
    store = FakeEngine((Image("sha256:" + "c" * 64, ("img:1",)),), status=7)
    assert run_evaluate(RunRequest("img:1", output=tmp_path / "o"), print, engine=store) == 7
    assert "--offline" not in store.ran[0].command
    with pytest.raises(KitError) as e:
        run_evaluate(RunRequest("img:1", hf_home=tmp_path / "nope"), print, engine=store)
    assert e.value.code == ExitCode.NOT_FOUND
