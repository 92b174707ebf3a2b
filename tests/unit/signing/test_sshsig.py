"""kit.signing against the real OpenSSH ``ssh-keygen``, both ways, and every rejection."""

from __future__ import annotations

import base64
import os
import shutil
import stat
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kit.errors import ExitCode, KitError
from kit.signing import sshsig
from kit.signing.allowed_signers import (
    AllowedSigner,
    load_allowed_signers,
    load_public_key,
    parse_allowed_signers,
)
from kit.signing.keys import generate_keypair, load_private_key
from kit.signing.wire import PrivateKey, armor, fingerprint

pytestmark = pytest.mark.skipif(
    shutil.which("ssh-keygen") is None,
    reason="OpenSSH ssh-keygen not installed (apt-get install -y openssh-client)",
)

ID = "alice@example.org"
DATA = b'{"manifest": "the bytes that get signed"}\n'
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


def pub_fields(path: Path) -> str:
    """``keytype base64`` of a .pub file."""
    return " ".join(Path(f"{path}.pub").read_text().split()[:2])


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


def _key_error(path: Path, passphrase: bytes | None) -> str:
    with pytest.raises(KitError) as e:
        load_private_key(path, passphrase)
    assert e.value.code == ExitCode.KEY_ERROR
    secret = "".join(path.read_text().splitlines()[1:-1]) if path.exists() else ""
    assert secret[:24] not in e.value.message or not secret
    assert "\n" not in e.value.message
    return e.value.message


def test_passphrase_protected_key(keys) -> None:
    assert isinstance(load_private_key(keys["protected"], b"pass"), ed25519.Ed25519PrivateKey)
    assert "passphrase is needed" in _key_error(keys["protected"], None)
    assert "wrong passphrase" in _key_error(keys["protected"], b"wrong")
    # a passphrase given for an unencrypted key is ignored, as ssh-keygen does
    assert load_private_key(keys["ed25519"], b"unused")


def test_unusable_private_keys(tmp_path: Path) -> None:
    assert "not found" in _key_error(tmp_path / "missing", None)
    (tmp_path / "text").write_text("not a key\n")
    assert "not a private key" in _key_error(tmp_path / "text", None)
    dsa = tmp_path / "dsa"
    if ssh_keygen("-q", "-t", "dsa", "-N", "", "-f", dsa).returncode != 0:
        pytest.skip("this ssh-keygen cannot make DSA keys")
    assert "unsupported key type DSA" in _key_error(dsa, None)


def test_public_key_file_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.pub").write_text("ssh-ed25519 notbase64!\n")
    with pytest.raises(KitError) as e:
        load_public_key(tmp_path / "bad.pub")
    assert e.value.code == ExitCode.KEY_ERROR
    with pytest.raises(KitError) as e:
        load_public_key(tmp_path / "missing.pub")
    assert e.value.code == ExitCode.NOT_FOUND


# --------------------------------------------------------------------------- rejections


def _raises(exc: type[KitError], code: ExitCode, *args, **kwargs) -> str:
    with pytest.raises(exc) as e:
        sshsig.verify(*args, **kwargs)
    assert e.value.code == code
    return e.value.message


def test_changed_byte_of_data(alice, allowed) -> None:
    sig = sshsig.sign(DATA, alice)
    assert sshsig.verify(DATA, sig, allowed_signers=allowed, identity=ID).principals == (ID,)
    for i in (0, len(DATA) // 2, len(DATA) - 1):
        changed = bytearray(DATA)
        changed[i] ^= 0x01
        _raises(
            sshsig.BadSignature,
            ExitCode.BAD_SIGNATURE,
            bytes(changed),
            sig,
            allowed_signers=allowed,
        )


def test_signature_swapped_from_other_data(alice, allowed) -> None:
    other = sshsig.sign(b"other data", alice)
    _raises(sshsig.BadSignature, ExitCode.BAD_SIGNATURE, DATA, other, allowed_signers=allowed)


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


def test_wrong_identity(alice, allowed) -> None:
    sig = sshsig.sign(DATA, alice)
    msg = _raises(
        sshsig.KeyNotAllowed,
        ExitCode.KEY_NOT_ALLOWED,
        DATA,
        sig,
        allowed_signers=allowed,
        identity="bob@example.org",
    )
    assert "'bob@example.org'" in msg


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


def test_check_order(keys, alice, allowed) -> None:
    mallory = load_private_key(keys["mallory"])
    # namespace before the cryptographic check, which comes before the key check
    _raises(
        sshsig.WrongNamespace,
        ExitCode.WRONG_NAMESPACE,
        b"x",
        sshsig.sign(DATA, mallory, "o"),
        allowed_signers=allowed,
    )
    _raises(
        sshsig.BadSignature,
        ExitCode.BAD_SIGNATURE,
        b"x",
        sshsig.sign(DATA, mallory),
        allowed_signers=allowed,
    )


def _rearmor(blob: bytes) -> str:
    return armor(blob)


def _blob(sig: str) -> bytes:
    return base64.b64decode("".join(sig.splitlines()[1:-1]))


@pytest.mark.parametrize(
    "garble",
    [
        lambda s: s[: len(s) // 2] + "\n-----END SSH SIGNATURE-----\n",  # truncated
        lambda s: s[: len(s) // 2],  # cut off
        lambda s: "hello",
        lambda s: "",
        lambda s: s.replace("A", "*", 3),  # bad base64
        lambda s: s.replace("BEGIN SSH SIGNATURE", "BEGIN PGP SIGNATURE"),
        lambda s: s + "trailing garbage\n",
        lambda s: _rearmor(_blob(s) + b"\0"),  # trailing data in the blob
        lambda s: _rearmor(b"SSHSIX" + _blob(s)[6:]),  # bad magic
        lambda s: _rearmor(_blob(s)[:9] + b"\x02" + _blob(s)[10:]),  # version 2
        lambda s: _rearmor(_blob(s).replace(b"sha512", b"sha384")),  # hash not allowed
        lambda s: _rearmor(_blob(s).replace(b"ssh-ed25519", b"ssh-ed25518", 1)),  # key type
    ],
)
def test_malformed_signature(alice, allowed, garble) -> None:
    bad = garble(sshsig.sign(DATA, alice))
    with pytest.raises(sshsig.MalformedSignature) as e:
        sshsig.parse_signature(bad)
    assert e.value.code == ExitCode.MALFORMED_SIGNATURE
    _raises(
        sshsig.MalformedSignature, ExitCode.MALFORMED_SIGNATURE, DATA, bad, allowed_signers=allowed
    )


def test_exactly_one_trust_anchor(alice, allowed) -> None:
    sig = sshsig.sign(DATA, alice)
    with pytest.raises(KitError):
        sshsig.verify(DATA, sig)
    with pytest.raises(KitError):
        sshsig.verify(DATA, sig, allowed_signers=allowed, public_key=alice.public_key())


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_any_changed_byte_of_the_signature_is_rejected(alice, allowed, data) -> None:
    blob = bytearray(_blob(sshsig.sign(DATA, alice)))
    i = data.draw(st.integers(0, len(blob) - 1))
    blob[i] ^= data.draw(st.integers(1, 255))
    with pytest.raises((sshsig.MalformedSignature, sshsig.WrongNamespace, sshsig.BadSignature)):
        sshsig.verify(DATA, _rearmor(bytes(blob)), allowed_signers=allowed)


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=2000), ns=st.text(st.characters(codec="ascii"), min_size=1))
def test_roundtrip(alice, allowed, data: bytes, ns: str) -> None:
    if "\0" in ns:
        return
    sig = sshsig.sign(data, alice, ns)
    assert sshsig.verify(data, sig, namespace=ns, allowed_signers=allowed).principals == (ID,)


# --------------------------------------------------------------------------- allowed_signers

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


def test_cert_authority_and_validity_are_explained(keys, alice) -> None:
    key = pub_fields(keys["ed25519"])
    sig = sshsig.sign(DATA, alice)
    ca = parse_allowed_signers(f"{ID} cert-authority {key}\n")
    msg = _raises(sshsig.KeyNotAllowed, ExitCode.KEY_NOT_ALLOWED, DATA, sig, allowed_signers=ca)
    assert "cert-authority" in msg and "not supported" in msg
    timed = parse_allowed_signers(f'{ID} valid-before="20300101Z" {key}\n')
    later = datetime(2031, 1, 1, tzinfo=UTC)
    msg = _raises(
        sshsig.KeyNotAllowed, ExitCode.KEY_NOT_ALLOWED, DATA, sig, allowed_signers=timed, now=later
    )
    assert "expired" in msg
    assert sshsig.verify(DATA, sig, allowed_signers=timed, now=datetime(2029, 1, 1, tzinfo=UTC))


def test_without_identity_all_matching_principals_are_named(keys, alice) -> None:
    key = pub_fields(keys["ed25519"])
    signers = parse_allowed_signers(f"{ID},a@b {key}\nc@d {key}\ne@f {OTHER}\n")
    got = sshsig.verify(DATA, sshsig.sign(DATA, alice), allowed_signers=signers)
    assert got.principals == (ID, "a@b", "c@d")


def test_load_allowed_signers(tmp_path: Path, keys) -> None:
    (tmp_path / "as").write_text(f"{ID} {pub_fields(keys['ed25519'])}\n")
    assert load_allowed_signers(tmp_path / "as")[0].principals == (ID,)
    with pytest.raises(KitError) as e:
        load_allowed_signers(tmp_path / "missing")
    assert e.value.code == ExitCode.NOT_FOUND


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


def test_generate_keypair_refuses_to_overwrite(tmp_path: Path) -> None:
    key = tmp_path / "id"
    generate_keypair(key, comment=ID)
    before = key.read_bytes(), Path(f"{key}.pub").read_bytes()
    with pytest.raises(KitError) as e:
        generate_keypair(key, comment=ID)
    assert e.value.code == ExitCode.KEY_ERROR and "exists" in e.value.message
    assert (key.read_bytes(), Path(f"{key}.pub").read_bytes()) == before
    only_pub = tmp_path / "other"
    Path(f"{only_pub}.pub").write_text("keep me\n")
    with pytest.raises(KitError):
        generate_keypair(only_pub)
    assert not only_pub.exists() and Path(f"{only_pub}.pub").read_text() == "keep me\n"


def test_generate_keypair_rejects_a_comment_that_is_not_one_identity(tmp_path: Path) -> None:
    with pytest.raises(KitError) as e:
        generate_keypair(tmp_path / "id", comment="Alice Doe <alice@example.org>")
    assert e.value.code == ExitCode.USAGE and not (tmp_path / "id").exists()
    line = generate_keypair(tmp_path / "id")  # default: user@host
    assert "@" in line.split()[0]
