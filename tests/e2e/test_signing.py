"""Signed bundles: our SSHSIG against the real OpenSSH tool, both ways, and every rejection."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kit.bundle.archive import read_bundle_archive, write_deterministic_targz
from kit.errors import ExitCode, KitError
from kit.signing import sshsig
from kit.signing.keys import load_private_key
from tests.support import require_tools


@pytest.fixture(scope="module", autouse=True)
def _ssh_keygen() -> None:
    require_tools("ssh-keygen", how="apt-get install -y openssh-client")


ID = "alice@example.org"


def kit(*args: str, env: dict | None = None, cwd: Path | None = None):
    return subprocess.run(
        [sys.executable, "-m", "kit", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def ssh_keygen(*args: str, data: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["ssh-keygen", *args], input=data, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("keys")
    proc = kit("keygen", "-f", str(d / "alice"), "-C", ID)
    assert proc.returncode == 0, proc.stderr
    (d / "allowed_signers").write_text(proc.stdout)
    assert (
        ssh_keygen(
            "-q", "-t", "ed25519", "-N", "", "-f", str(d / "mallory"), "-C", "mallory"
        ).returncode
        == 0
    )
    return {
        "alice": d / "alice",
        "mallory": d / "mallory",
        "allowed": d / "allowed_signers",
        "dir": d,
    }


@pytest.fixture(scope="module")
def signed(sts_run: Path, keys, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("signed") / "sts.tar.gz"
    proc = kit("bundle", str(sts_run), "-o", str(dest), "--sign", str(keys["alice"]))
    assert proc.returncode == 0, proc.stderr
    return dest


def _verify(bundle: Path, keys, *extra: str):
    return kit("verify", str(bundle), "--allowed-signers", str(keys["allowed"]), "--json", *extra)


def _code(proc) -> int:
    assert "Traceback" not in proc.stderr
    return proc.returncode


def test_keygen_writes_0600_and_refuses_overwrite(keys) -> None:
    mode = stat.S_IMODE(keys["alice"].stat().st_mode)
    assert mode == 0o600
    line = keys["allowed"].read_text()
    assert line.startswith(f'{ID} namespaces="repro-kit" ssh-ed25519 ')
    before = keys["alice"].read_bytes()
    proc = kit("keygen", "-f", str(keys["alice"]))
    assert _code(proc) == ExitCode.KEY_ERROR and "exists" in proc.stderr
    assert keys["alice"].read_bytes() == before


def test_signed_bundle_verifies_and_names_the_signer(signed: Path, keys) -> None:
    proc = _verify(signed, keys, "--identity", ID)
    assert _code(proc) == 0, proc.stdout
    report = json.loads(proc.stdout)
    assert report["signer"]["principals"] == [ID]
    assert report["checks"][1]["name"] == "signature" and report["checks"][1]["ok"] is True
    assert kit("verify", str(signed), "--public-key", str(keys["alice"]) + ".pub").returncode == 0


def test_openssh_accepts_our_signature(signed: Path, keys, tmp_path: Path) -> None:
    members = read_bundle_archive(signed)
    (tmp_path / "manifest.json").write_bytes(members["manifest.json"])
    (tmp_path / "manifest.json.sig").write_bytes(members["manifest.json.sig"])
    proc = ssh_keygen(
        "-Y",
        "verify",
        "-f",
        str(keys["allowed"]),
        "-I",
        ID,
        "-n",
        "repro-kit",
        "-s",
        str(tmp_path / "manifest.json.sig"),
        data=members["manifest.json"],
    )
    assert proc.returncode == 0, proc.stderr
    assert b"Good" in proc.stdout


@pytest.mark.parametrize("ktype", ["ed25519", "ecdsa", "rsa"])
def test_we_accept_openssh_signatures(sts_run: Path, tmp_path: Path, ktype: str) -> None:
    key = tmp_path / f"id_{ktype}"
    assert ssh_keygen("-q", "-t", ktype, "-N", "", "-f", str(key), "-C", "bob").returncode == 0
    pub = key.with_suffix(".pub").read_text().split()
    allowed = tmp_path / "allowed"
    allowed.write_text(f"bob {pub[0]} {pub[1]}\n")
    bundle = tmp_path / "b.tar.gz"
    assert kit("bundle", str(sts_run), "-o", str(bundle)).returncode == 0
    members = read_bundle_archive(bundle)
    (tmp_path / "manifest.json").write_bytes(members["manifest.json"])
    proc = ssh_keygen(
        "-Y", "sign", "-f", str(key), "-n", "repro-kit", str(tmp_path / "manifest.json")
    )
    assert proc.returncode == 0, proc.stderr
    members["manifest.json.sig"] = (tmp_path / "manifest.json.sig").read_bytes()
    write_deterministic_targz(members, bundle)
    proc = kit(
        "verify", str(bundle), "--allowed-signers", str(allowed), "--identity", "bob", "--json"
    )
    assert _code(proc) == 0, proc.stdout
    assert json.loads(proc.stdout)["signer"]["principals"] == ["bob"]
    # and ssh-keygen agrees with what we produce for that key type
    ours = sshsig.sign(b"data", load_private_key(key))
    (tmp_path / "d.sig").write_text(ours)
    assert (
        ssh_keygen(
            "-Y",
            "verify",
            "-f",
            str(allowed),
            "-I",
            "bob",
            "-n",
            "repro-kit",
            "-s",
            str(tmp_path / "d.sig"),
            data=b"data",
        ).returncode
        == 0
    )


def test_any_changed_byte_is_rejected(signed: Path, keys, tmp_path: Path) -> None:
    members = read_bundle_archive(signed)
    for name in sorted(members):
        if name == "manifest.json.sig":
            continue
        blob = bytearray(members[name])
        blob[len(blob) // 2] ^= 0x01
        path = tmp_path / "t.tar.gz"
        write_deterministic_targz({**members, name: bytes(blob)}, path)
        proc = _verify(path, keys)
        expected = ExitCode.BAD_SIGNATURE if name == "manifest.json" else ExitCode.INTEGRITY
        assert _code(proc) == expected, (name, proc.stdout)


def test_resigned_by_a_key_not_allowed(signed: Path, keys, tmp_path: Path) -> None:
    path = tmp_path / "m.tar.gz"
    shutil.copy(signed, path)
    assert kit("sign", str(path), "--key", str(keys["mallory"])).returncode == 0
    proc = _verify(path, keys)
    assert _code(proc) == ExitCode.KEY_NOT_ALLOWED
    assert "not in allowed_signers" in proc.stdout


def test_wrong_identity_is_rejected(signed: Path, keys) -> None:
    proc = _verify(signed, keys, "--identity", "bob@example.org")
    assert _code(proc) == ExitCode.KEY_NOT_ALLOWED


def test_signature_swapped_from_another_bundle(
    signed: Path, biosses_bundle, keys, tmp_path: Path
) -> None:
    mine = read_bundle_archive(signed)
    other = read_bundle_archive(biosses_bundle)
    path = tmp_path / "swap.tar.gz"
    write_deterministic_targz({**mine, "manifest.json.sig": other["manifest.json.sig"]}, path)
    assert _code(_verify(path, keys)) == ExitCode.BAD_SIGNATURE


def test_other_namespace_is_rejected(signed: Path, keys, tmp_path: Path) -> None:
    members = read_bundle_archive(signed)
    (tmp_path / "manifest.json").write_bytes(members["manifest.json"])
    assert (
        ssh_keygen(
            "-Y", "sign", "-f", str(keys["alice"]), "-n", "file", str(tmp_path / "manifest.json")
        ).returncode
        == 0
    )
    members["manifest.json.sig"] = (tmp_path / "manifest.json.sig").read_bytes()
    path = tmp_path / "ns.tar.gz"
    write_deterministic_targz(members, path)
    proc = _verify(path, keys)
    assert _code(proc) == ExitCode.WRONG_NAMESPACE and "'file'" in proc.stdout


@pytest.mark.parametrize("garble", ["truncated", "not-armor", "bad-base64"])
def test_malformed_signature(signed: Path, keys, tmp_path: Path, garble: str) -> None:
    members = read_bundle_archive(signed)
    sig = members["manifest.json.sig"]
    bad = {
        "truncated": sig[: len(sig) // 2] + b"\n-----END SSH SIGNATURE-----\n",
        "not-armor": b"hello",
        "bad-base64": sig.replace(b"A", b"*", 3),
    }[garble]
    path = tmp_path / "g.tar.gz"
    write_deterministic_targz({**members, "manifest.json.sig": bad}, path)
    assert _code(_verify(path, keys)) == ExitCode.MALFORMED_SIGNATURE


def test_signed_but_no_trust_anchor(signed: Path) -> None:
    proc = kit("verify", str(signed), "--json")
    assert _code(proc) == ExitCode.UNSIGNED  # README: signed, but no trust anchor: 20
    assert _code(kit("verify", str(signed), "--allow-unsigned")) == 0


def test_passphrase_protected_key(sts_run: Path, tmp_path: Path) -> None:
    key = tmp_path / "pp"
    proc = kit(
        "keygen", "-f", str(key), "-C", ID, "--passphrase-env", "PP", env={"PP": "correct horse"}
    )
    assert proc.returncode == 0, proc.stderr
    assert ssh_keygen("-y", "-P", "correct horse", "-f", str(key)).returncode == 0
    out = tmp_path / "b.tar.gz"
    ok = kit(
        "bundle",
        str(sts_run),
        "-o",
        str(out),
        "--sign",
        str(key),
        "--passphrase-env",
        "PP",
        env={"PP": "correct horse"},
    )
    assert ok.returncode == 0, ok.stderr
    wrong = kit(
        "bundle",
        str(sts_run),
        "-o",
        str(tmp_path / "w.tar.gz"),
        "--sign",
        str(key),
        "--passphrase-env",
        "PP",
        env={"PP": "wrong"},
    )
    assert _code(wrong) == ExitCode.KEY_ERROR and "wrong passphrase" in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "w.tar.gz").exists()
    missing = kit("bundle", str(sts_run), "-o", str(tmp_path / "m.tar.gz"), "--sign", str(key))
    assert _code(missing) == ExitCode.KEY_ERROR and "passphrase" in missing.stderr


def test_private_key_never_enters_a_bundle(signed: Path, keys) -> None:
    secret = keys["alice"].read_bytes()
    body = secret.split(b"-----")[2].replace(b"\n", b"")[:40]
    for name, data in read_bundle_archive(signed).items():
        assert body not in data.replace(b"\n", b""), name


def test_key_loading_errors_are_kit_errors(tmp_path: Path) -> None:
    with pytest.raises(KitError) as e:
        load_private_key(tmp_path / "nope")
    assert e.value.code == ExitCode.KEY_ERROR
    (tmp_path / "dsa").write_text("not a key")
    with pytest.raises(KitError):
        load_private_key(tmp_path / "dsa")
