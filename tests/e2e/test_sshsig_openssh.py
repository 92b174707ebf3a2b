"""kit.signing against the real OpenSSH ``ssh-keygen``, both ways (the pure checks of
kit.signing are in tests/unit/signing/test_sshsig.py)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from kit.errors import ExitCode, KitError
from kit.signing import sshsig
from kit.signing.allowed_signers import (
    AllowedSigner,
    load_public_key,
    parse_allowed_signers,
)
from kit.signing.keys import generate_keypair, load_private_key
from kit.signing.wire import PrivateKey, fingerprint
from tests.sshkeys import DATA, ID, pub_fields
from tests.sshkeys import key_error as _key_error
from tests.sshkeys import raises as _raises
from tests.support import require_tools


@pytest.fixture(scope="module", autouse=True)
def _ssh_keygen() -> None:
    require_tools("ssh-keygen", how="apt-get install -y openssh-client")


KEY_TYPES = {
    "ed25519": ["-t", "ed25519"],
    "ecdsa256": ["-t", "ecdsa", "-b", "256"],
    "ecdsa384": ["-t", "ecdsa", "-b", "384"],
    "ecdsa521": ["-t", "ecdsa", "-b", "521"],
    "rsa": ["-t", "rsa", "-b", "2048"],
}


def ssh_keygen(*args: str | Path, data: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ssh-keygen", *map(str, args)], input=data, capture_output=True, timeout=60
    )


def make_key(path: Path, *args: str, passphrase: str = "") -> Path:
    proc = ssh_keygen("-q", *args, "-N", passphrase, "-C", ID, "-f", path)
    assert proc.returncode == 0, proc.stderr
    return path


def openssh_sign(key: Path, data: bytes, tmp: Path, namespace: str = "repro-kit") -> str:
    msg = tmp / f"msg-{key.name}-{namespace}"
    msg.write_bytes(data)
    proc = ssh_keygen("-Y", "sign", "-f", key, "-n", namespace, msg)
    assert proc.returncode == 0, proc.stderr
    return Path(f"{msg}.sig").read_text()


def openssh_verify(
    allowed: str, sig: str, data: bytes, tmp: Path, identity: str = ID, ns: str = "repro-kit"
) -> subprocess.CompletedProcess:
    (tmp / "allowed_signers").write_text(allowed)
    (tmp / "sig").write_text(sig)
    return ssh_keygen(
        "-Y",
        "verify",
        "-f",
        tmp / "allowed_signers",
        "-I",
        identity,
        "-n",
        ns,
        "-s",
        tmp / "sig",
        data=data,
    )


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("keys")
    out = {name: make_key(d / name, *args) for name, args in KEY_TYPES.items()}
    out["mallory"] = make_key(d / "mallory", "-t", "ed25519")
    out["protected"] = make_key(d / "protected", "-t", "ed25519", passphrase="pass")
    return out


@pytest.fixture(scope="module")
def alice(keys: dict[str, Path]) -> PrivateKey:
    return load_private_key(keys["ed25519"])


@pytest.fixture(scope="module")
def allowed(keys: dict[str, Path]) -> list[AllowedSigner]:
    return parse_allowed_signers(f"{ID} {pub_fields(keys['ed25519'])}\n")


# --------------------------------------------------------------------------- interop


@pytest.mark.parametrize("ktype", KEY_TYPES)
def test_openssh_accepts_our_signature(keys, ktype: str, tmp_path: Path) -> None:
    sig = sshsig.sign(DATA, load_private_key(keys[ktype]))
    proc = openssh_verify(f"{ID} {pub_fields(keys[ktype])}\n", sig, DATA, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert b"Good" in proc.stdout
    check = ssh_keygen(
        "-Y", "check-novalidate", "-n", "repro-kit", "-s", tmp_path / "sig", data=DATA
    )
    assert check.returncode == 0, check.stderr
    bad = openssh_verify(f"{ID} {pub_fields(keys[ktype])}\n", sig, DATA + b"x", tmp_path)
    assert bad.returncode != 0


@pytest.mark.parametrize("ktype", KEY_TYPES)
def test_we_accept_openssh_signatures(keys, ktype: str, tmp_path: Path) -> None:
    sig = openssh_sign(keys[ktype], DATA, tmp_path)
    signers = parse_allowed_signers(f"{ID} {pub_fields(keys[ktype])}\n")
    got = sshsig.verify(DATA, sig, allowed_signers=signers, identity=ID)
    parsed = sshsig.parse_signature(sig)
    assert got.principals == (ID,)
    assert got.key_type == parsed.key_type == pub_fields(keys[ktype]).split()[0]
    listed = ssh_keygen("-l", "-E", "sha256", "-f", f"{keys[ktype]}.pub").stdout.decode()
    assert got.fingerprint == parsed.fingerprint and got.fingerprint in listed
    assert parsed.hash_algorithm == "sha512" and parsed.namespace == "repro-kit"
    public = load_public_key(Path(f"{keys[ktype]}.pub"))
    assert sshsig.verify(DATA, sig, public_key=public).fingerprint == got.fingerprint
    assert fingerprint(public) == got.fingerprint


def test_ed25519_signature_is_byte_identical_to_ssh_keygen(keys, alice, tmp_path: Path) -> None:
    # Ed25519 is deterministic, so the whole armored text must match.
    ours = sshsig.sign(DATA, alice)
    assert ours == openssh_sign(keys["ed25519"], DATA, tmp_path)
    lines = ours.splitlines()
    assert lines[0] == "-----BEGIN SSH SIGNATURE-----" and ours.endswith("SIGNATURE-----\n")
    assert all(len(line) <= 70 for line in lines[1:-1]) and len(lines[1]) == 70


# --------------------------------------------------------------------------- keys


def test_keys_in_pem_and_pkcs8_load(tmp_path: Path) -> None:
    rsa_pem = make_key(tmp_path / "rsa", "-t", "rsa", "-b", "2048", "-m", "PEM", passphrase="passw")
    ec_p8 = make_key(tmp_path / "ec", "-t", "ecdsa", "-m", "PKCS8")
    for path, pw in ((rsa_pem, b"passw"), (ec_p8, None)):
        sig = sshsig.sign(DATA, load_private_key(path, pw))
        assert sshsig.verify(DATA, sig, public_key=load_public_key(Path(f"{path}.pub")))


def test_passphrase_protected_key(keys) -> None:
    assert isinstance(load_private_key(keys["protected"], b"pass"), ed25519.Ed25519PrivateKey)
    assert "passphrase is needed" in _key_error(keys["protected"], None)
    assert "wrong passphrase" in _key_error(keys["protected"], b"wrong")
    # a passphrase given for an unencrypted key is ignored, as ssh-keygen does
    assert load_private_key(keys["ed25519"], b"unused")


def test_key_not_allowed(keys, allowed, tmp_path: Path) -> None:
    mallory = load_private_key(keys["mallory"])
    sig = sshsig.sign(DATA, mallory)
    msg = _raises(
        sshsig.KeyNotAllowed, ExitCode.KEY_NOT_ALLOWED, DATA, sig, allowed_signers=allowed
    )
    assert "not in allowed_signers" in msg and sshsig.parse_signature(sig).fingerprint in msg
    alice_pub = load_public_key(Path(f"{keys['ed25519']}.pub"))
    _raises(sshsig.KeyNotAllowed, ExitCode.KEY_NOT_ALLOWED, DATA, sig, public_key=alice_pub)
    proc = openssh_verify(f"{ID} {pub_fields(keys['ed25519'])}\n", sig, DATA, tmp_path)
    assert proc.returncode != 0


def test_other_namespace(keys, alice, allowed, tmp_path: Path) -> None:
    for sig in (
        sshsig.sign(DATA, alice, "other"),
        openssh_sign(keys["ed25519"], DATA, tmp_path, "other"),
    ):
        msg = _raises(
            sshsig.WrongNamespace, ExitCode.WRONG_NAMESPACE, DATA, sig, allowed_signers=allowed
        )
        assert "'other'" in msg
        assert sshsig.verify(DATA, sig, namespace="other", allowed_signers=allowed)


OTHER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGT2Gy1ckcudi8cG2f1S2Zb6Lx5d2XazA3KIaXdrAQa0"


@pytest.mark.parametrize(
    ("line", "ok"),
    [
        ("{id} {key}", True),
        ("*@example.org {key}", True),
        ("a?ice@example.org {key}", True),
        ("bob@example.org,alice@example.org {key} a comment", True),
        ('"alice@example.org" {key}', True),
        ("# comment\n\n   {id} {key}\n", True),
        (f"bob@example.org {OTHER}\n{{id}} {{key}}", True),
        ('{id} namespaces="git,repro-kit" {key}', True),
        ('{id} namespaces="repro-*" {key}', True),
        ('{id} valid-after="20000101",valid-before="29990101Z" {key}', True),
        ('{id} NAMESPACES="repro-kit" {key}', True),
        ("*@example.org,!alice@example.org {key}", False),
        ("ALICE@example.org {key}", False),
        ("bob@example.org {key}", False),
        (f"{{id}} {OTHER}", False),
        ('{id} namespaces="git" {key}', False),
        ('{id} namespaces="*,!repro-kit" {key}', False),
        ("{id} cert-authority {key}", False),
        ('{id} valid-before="20000101" {key}', False),
        ('{id} valid-after="29990101120000Z" {key}', False),
    ],
)
def test_allowed_signers_agree_with_openssh(keys, line: str, ok: bool, tmp_path: Path) -> None:
    text = line.format(id=ID, key=pub_fields(keys["ed25519"])) + "\n"
    sig = openssh_sign(keys["ed25519"], DATA, tmp_path)
    assert (openssh_verify(text, sig, DATA, tmp_path).returncode == 0) is ok
    signers = parse_allowed_signers(text)
    if ok:
        assert sshsig.verify(DATA, sig, allowed_signers=signers, identity=ID).principals == (ID,)
    else:
        _raises(
            sshsig.KeyNotAllowed,
            ExitCode.KEY_NOT_ALLOWED,
            DATA,
            sig,
            allowed_signers=signers,
            identity=ID,
        )


@pytest.mark.parametrize(
    "line",
    [
        '{id} foo="bar" {key}',  # unknown option
        "{id} namespaces=repro-kit {key}",  # value not quoted
        '{id} namespaces="a",namespaces="b" {key}',  # twice
        '{id} valid-after="2000" {key}',  # bad time
        "{id} ssh-ed25519 AAAA!!",  # no key
        "{id}",
    ],
)
def test_bad_allowed_signers_lines(keys, line: str, tmp_path: Path) -> None:
    text = line.format(id=ID, key=pub_fields(keys["ed25519"])) + "\n"
    sig = openssh_sign(keys["ed25519"], DATA, tmp_path)
    assert openssh_verify(text, sig, DATA, tmp_path).returncode != 0
    with pytest.raises(KitError) as e:
        parse_allowed_signers(text)
    assert e.value.code == ExitCode.USAGE and "line 1" in e.value.message


# --------------------------------------------------------------------------- generate_keypair


def test_generate_keypair_works_with_openssh(tmp_path: Path, monkeypatch) -> None:
    modes: list[int] = []
    real_replace = os.replace

    def replace(src, dst):  # record each file's mode before it appears under its name
        modes.append(stat.S_IMODE(os.stat(src).st_mode))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    old_umask = os.umask(0)
    try:
        line = generate_keypair(tmp_path / "id", comment=ID)
    finally:
        os.umask(old_umask)
    key = tmp_path / "id"
    assert modes[0] == 0o600 and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "id.pub").stat().st_mode) == 0o644
    assert line == f'{ID} namespaces="repro-kit" {pub_fields(key)}'
    assert (tmp_path / "id.pub").read_text() == f"{pub_fields(key)} {ID}\n"
    # our signature verifies with ssh-keygen against the returned line ...
    sig = sshsig.sign(DATA, load_private_key(key))
    assert openssh_verify(line + "\n", sig, DATA, tmp_path).returncode == 0
    # ... and ssh-keygen can sign with the private key we wrote
    theirs = openssh_sign(key, DATA, tmp_path)
    assert theirs == sig
    assert ssh_keygen("-y", "-f", key).stdout.decode().split()[:2] == pub_fields(key).split()


def test_generate_keypair_with_passphrase(tmp_path: Path) -> None:
    key = tmp_path / "id"
    generate_keypair(key, b"pass phrase", ID)
    proc = ssh_keygen("-y", "-P", "pass phrase", "-f", key)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().split()[:2] == pub_fields(key).split()
    assert ssh_keygen("-y", "-P", "wrong", "-f", key).returncode != 0
    assert load_private_key(key, b"pass phrase")
    assert "passphrase" in _key_error(key, None)
