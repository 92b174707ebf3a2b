"""Signing through a real ssh-agent: `--sign KEY.pub`, REPRO_KIT_SIGNING_KEY, every refusal.

One `ssh-agent -D` per module (the `agent` fixture, tests/conftest.py: its askpass always says
no, so a key added with `ssh-add -c` is refused), real keys from ssh-keygen added with ssh-add,
a real bundle of a real evaluation, and the signatures checked by `ssh-keygen -Y verify` and
`repro-kit verify`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kit.bundle.archive import read_bundle_archive
from kit.signing.sshsig import parse_signature
from kit.signing.wire import fingerprint
from tests.bundletools import manifest_and_signature
from tests.support import clean_env

ENV_KEY = "REPRO_KIT_SIGNING_KEY"


def run(*args: str | Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([*map(str, args)], capture_output=True, text=True, timeout=120, env=env)


def kit(
    *args: str | Path, agent: dict[str, Path] | None, **env: str
) -> subprocess.CompletedProcess:
    sock = str(agent["sock"]) if agent else None
    return run(sys.executable, "-m", "kit", *args, env=clean_env(SSH_AUTH_SOCK=sock, **env))


@pytest.fixture(scope="module")
def unsigned(sts_bundle: Path) -> Path:
    """The session's unsigned STS bundle (tests/e2e/conftest.py); tests sign copies of it."""
    return sts_bundle


def signer_fingerprint(bundle: Path) -> str:
    return parse_signature(manifest_and_signature(bundle)[1]).fingerprint


def key_fingerprint(pub: Path) -> str:
    import base64

    return fingerprint(base64.b64decode(pub.read_text().split()[1]))


def one_line_error(proc: subprocess.CompletedProcess, code: int = 25) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("repro-kit: error: "), proc.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("name", "sig_type"), [("ed25519", "ssh-ed25519"), ("rsa", "rsa-sha2-512")]
)
def test_sign_through_the_agent(agent, unsigned: Path, tmp_path: Path, name, sig_type) -> None:
    bundle = tmp_path / "b.tar.gz"
    shutil.copy(unsigned, bundle)
    proc = kit("sign", bundle, "--sign", agent[name], agent=agent)
    assert proc.returncode == 0, proc.stderr
    manifest, armored = manifest_and_signature(bundle)
    sig = parse_signature(armored)
    assert (sig.signature_type, sig.fingerprint) == (sig_type, key_fingerprint(agent[name]))
    sig_file = tmp_path / "manifest.json.sig"
    sig_file.write_text(armored)
    allowed = str(agent["allowed"])
    checked = subprocess.run(
        [
            "ssh-keygen",
            "-Y",
            "verify",
            "-f",
            allowed,
            "-I",
            name,
            "-n",
            "repro-kit",
            "-s",
            str(sig_file),
        ],
        input=manifest,
        capture_output=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    assert f'Good "repro-kit" signature for {name}'.encode() in checked.stdout
    verified = kit("verify", bundle, "--allowed-signers", agent["allowed"], agent=None)
    assert verified.returncode == 0, verified.stderr + verified.stdout


def test_bundle_signs_with_the_key_the_environment_names(agent, sts_run, tmp_path) -> None:
    dest = tmp_path / "env.tar.gz"
    proc = kit("bundle", sts_run, "-o", dest, agent=agent, **{ENV_KEY: str(agent["ed25519"])})
    assert proc.returncode == 0, proc.stderr
    assert "signed" in proc.stdout and "unsigned" not in proc.stdout
    assert signer_fingerprint(dest) == key_fingerprint(agent["ed25519"])
    pinned = kit("verify", dest, "--public-key", agent["ed25519"], agent=None)
    assert pinned.returncode == 0, pinned.stderr


def test_explicit_sign_wins_over_the_environment(agent, unsigned, tmp_path) -> None:
    bundle = tmp_path / "b.tar.gz"
    shutil.copy(unsigned, bundle)
    env = {ENV_KEY: str(agent["ed25519"])}
    assert kit("sign", bundle, agent=agent, **env).returncode == 0
    assert signer_fingerprint(bundle) == key_fingerprint(agent["ed25519"])
    assert kit("sign", bundle, "--key", agent["rsa"], agent=agent, **env).returncode == 0
    assert signer_fingerprint(bundle) == key_fingerprint(agent["rsa"])


def test_no_sign_and_an_empty_variable_turn_signing_off(agent, sts_run, tmp_path) -> None:
    for i, (args, env) in enumerate(
        [(["--no-sign"], {ENV_KEY: str(agent["absent"])}), ([], {ENV_KEY: ""})]
    ):
        dest = tmp_path / f"{i}.tar.gz"
        proc = kit("bundle", sts_run, "-o", dest, *args, agent=agent, **env)
        assert proc.returncode == 0, proc.stderr
        assert "manifest.json.sig" not in read_bundle_archive(dest)
    both = kit(
        "bundle", sts_run, "-o", tmp_path / "x", "--no-sign", "--sign", agent["rsa"], agent=agent
    )
    assert "--no-sign" in one_line_error(both, 2)


def test_sign_needs_a_key(unsigned, tmp_path) -> None:
    assert ENV_KEY in one_line_error(kit("sign", unsigned, agent=None), 2)


def refusal(agent, unsigned, sts_run, tmp_path, pub: Path, *, sock: str | None = "agent") -> str:
    """Run `sign` and `bundle`; both must exit 25 with the same one line and write nothing."""
    bundle = tmp_path / "b.tar.gz"
    shutil.copy(unsigned, bundle)
    env = clean_env() if sock is None else clean_env(SSH_AUTH_SOCK=str(agent["sock"]))
    if sock not in (None, "agent"):
        env["SSH_AUTH_SOCK"] = sock
    out = tmp_path / "signed.tar.gz"
    cli = [sys.executable, "-m", "kit"]
    line = one_line_error(run(*cli, "sign", bundle, "--sign", pub, "-o", out, env=env))
    assert not out.exists()
    assert bundle.read_bytes() == unsigned.read_bytes()
    assert one_line_error(run(*cli, "bundle", sts_run, "-o", out, "--sign", pub, env=env)) == line
    assert not out.exists()
    return line


def test_key_not_in_the_agent(agent, unsigned, sts_run, tmp_path) -> None:
    line = refusal(agent, unsigned, sts_run, tmp_path, agent["absent"])
    fp = key_fingerprint(agent["absent"])
    assert f"key {fp} ({agent['absent']}) is not in ssh-agent" in line
    assert line.endswith(f"ssh-add {agent['dir'] / 'id_absent'}")


def test_agent_refuses_a_confirm_key(agent, unsigned, sts_run, tmp_path) -> None:
    line = refusal(agent, unsigned, sts_run, tmp_path, agent["confirm"])
    assert f"ssh-agent refused to sign with {key_fingerprint(agent['confirm'])}" in line


def test_no_agent(agent, unsigned, sts_run, tmp_path) -> None:
    line = refusal(agent, unsigned, sts_run, tmp_path, agent["ed25519"], sock=None)
    assert "no ssh-agent: SSH_AUTH_SOCK is not set" in line


def test_dead_agent_socket(agent, unsigned, sts_run, tmp_path) -> None:
    gone = str(tmp_path / "gone.sock")
    line = refusal(agent, unsigned, sts_run, tmp_path, agent["ed25519"], sock=gone)
    assert line.endswith(f"no ssh-agent at SSH_AUTH_SOCK={gone}: No such file or directory")


@pytest.mark.parametrize(
    "text", ["ssh-ed25519 not-base64!\n", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5\n", ""]
)
def test_malformed_pub(agent, unsigned, sts_run, tmp_path, text: str) -> None:
    pub = tmp_path / "bad.pub"
    pub.write_text(text)
    assert str(pub) in refusal(agent, unsigned, sts_run, tmp_path, pub)


def test_pub_content_without_the_suffix_goes_to_the_agent(agent, unsigned, tmp_path) -> None:
    plain = tmp_path / "signing_key"
    shutil.copy(agent["rsa"], plain)
    bundle = tmp_path / "b.tar.gz"
    shutil.copy(unsigned, bundle)
    proc = kit("sign", bundle, "--sign", plain, agent=agent)
    assert proc.returncode == 0, proc.stderr
    assert signer_fingerprint(bundle) == key_fingerprint(agent["rsa"])


def test_passphrase_env_with_a_pub_is_a_usage_error(agent, unsigned) -> None:
    proc = kit("sign", unsigned, "--sign", agent["rsa"], "--passphrase-env", "X", agent=agent)
    assert "public key" in one_line_error(proc, 2)
