"""`evaluate` ends with a verified bundle, signed through a real ssh-agent (issue 13).

The agent fixture (Ed25519 and RSA keys, a confirm-only key, a key it lacks) comes from
tests/conftest.py; evaluations use the real model and data.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from kit.bundle.archive import read_bundle_archive
from kit.signing.sshsig import parse_signature
from tests.bundletools import manifest_and_signature
from tests.support import kit_env


def _env(hf: Path, sock: Path | None, **env: str) -> dict[str, str]:
    e = kit_env(hf, **env)
    e.pop("REPRO_KIT_SIGNING_KEY", None)
    e.pop("SSH_AUTH_SOCK", None)
    if sock is not None:
        e["SSH_AUTH_SOCK"] = str(sock)
    return e


def evaluate(hf: Path, *args: str | Path, sock: Path | None, cwd: Path | None = None, **env: str):
    cmd = [sys.executable, "-m", "kit", "evaluate", *map(str, args), "--offline", "-q"]
    e = _env(hf, sock, **env)
    return subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=1500, cwd=cwd)


@pytest.fixture(scope="module")
def sts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("evb") / "sts"


def _ssh_keygen_verify(bundle: Path, allowed: Path, principal: str) -> None:
    manifest, sig = manifest_and_signature(bundle)
    d = bundle.parent
    (d / "m.sig").write_text(sig)
    proc = subprocess.run(
        ["ssh-keygen", "-Y", "verify", "-f", str(allowed), "-I", principal, "-n", "repro-kit",
         "-s", str(d / "m.sig")],
        input=manifest, capture_output=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def _verify(hf: Path, bundle: Path, *args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kit", "verify", str(bundle), *map(str, args)],
        env=kit_env(hf), capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_evaluate_signs_through_the_agent_ed25519_then_rsa(
    agent: dict[str, Path],
    hf_home: Path,
    sts_dir: Path,
    tmp_path: Path,
) -> None:
    proc = evaluate(hf_home, "--tasks", "STSBenchmark", "--sign", agent["ed25519"], "-o", sts_dir,
                    sock=agent["sock"], cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    bundle = sts_dir.with_name("sts.tar.gz")
    assert bundle.is_file()
    sig = parse_signature(manifest_and_signature(bundle)[1])
    assert f"bundle: {bundle} (signed by {sig.fingerprint}; verified)" in proc.stdout
    import hashlib

    assert f"sha256: {hashlib.sha256(bundle.read_bytes()).hexdigest()}" in proc.stdout
    # the next step, run as printed (repro-kit on PATH): the agent's .pub checks the signature
    [line] = [ln for ln in proc.stdout.splitlines() if ln.startswith("next: ")]
    argv = shlex.split(line.removeprefix("next: "))
    assert argv[:3] == ["repro-kit", "export", str(bundle)]
    assert argv[-2:] == ["--public-key", str(agent["ed25519"])]
    shell = {**_env(hf_home, None), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run(argv, cwd=tmp_path, env=shell, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert list((tmp_path / "results" / "results").glob("*/*/STSBenchmark.json"))
    _ssh_keygen_verify(bundle, agent["allowed"], "ed25519")
    ok = _verify(hf_home, bundle, "--allowed-signers", agent["allowed"])
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # the same command with the RSA key: the run resumes (nothing to evaluate), re-bundles
    proc = evaluate(hf_home, "--tasks", "STSBenchmark", "--sign", agent["rsa"], "-o", sts_dir,
                    sock=agent["sock"])  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    sig = parse_signature(manifest_and_signature(bundle)[1])
    assert sig.key_type == "ssh-rsa" and sig.signature_type == "rsa-sha2-512"
    _ssh_keygen_verify(bundle, agent["allowed"], "rsa")
    ok = _verify(hf_home, bundle, "--allowed-signers", agent["allowed"])
    assert ok.returncode == 0, ok.stdout + ok.stderr


@pytest.mark.parametrize("case", ["absent", "no-agent", "refused"])
def test_signing_failure_is_25_and_leaves_no_bundle(
    case: str,
    agent: dict[str, Path],
    hf_home: Path,
    sts_dir: Path,
    tmp_path: Path,
) -> None:
    key = agent["confirm" if case == "refused" else "ed25519" if case == "no-agent" else "absent"]
    sock = None if case == "no-agent" else agent["sock"]
    dest = tmp_path / "b.tar.gz"
    proc = evaluate(hf_home, "--tasks", "STSBenchmark", "--sign", key, "-o", sts_dir,
                    "--bundle", dest, sock=sock)  # fmt: skip
    assert proc.returncode == 25, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0], proc.stderr
    assert not dest.exists()
    assert (sts_dir / "run.json").is_file()  # the run folder is kept
    # with --allow-unsigned the bundle is written unsigned, and it is still 25
    proc = evaluate(hf_home, "--tasks", "STSBenchmark", "--sign", key, "-o", sts_dir,
                    "--bundle", dest, "--allow-unsigned", sock=sock)  # fmt: skip
    assert proc.returncode == 25, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "repro-kit sign" in proc.stderr
    assert "manifest.json.sig" not in read_bundle_archive(dest)
    assert _verify(hf_home, dest, "--allow-unsigned").returncode == 0


def test_no_bundle_and_bad_combinations(hf_home: Path, tmp_path: Path) -> None:
    proc = evaluate(hf_home, "--no-bundle", "--sign", "x.pub", sock=None)
    assert proc.returncode == 2 and "--no-bundle" in proc.stderr
    proc = evaluate(hf_home, "--no-sign", "--sign", "x.pub", sock=None)
    assert proc.returncode == 2 and "--no-sign" in proc.stderr
