"""kit.signing in-process: signatures, every rejection, allowed_signers, key files.

Keys are made here by kit's own ``generate_keypair`` (and ``cryptography``); the same code
against the real OpenSSH ``ssh-keygen``, both ways, is tests/e2e/test_sshsig_openssh.py.
"""

from __future__ import annotations

import base64
import warnings
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa
from hypothesis import HealthCheck, assume, given, settings
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
from kit.signing.wire import PrivateKey, armor
from tests.sshkeys import DATA, ID, pub_fields
from tests.sshkeys import key_error as _key_error
from tests.sshkeys import raises as _raises


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Ed25519 key files (OpenSSH format, ``.pub`` beside): alice's and mallory's."""
    d = tmp_path_factory.mktemp("keys")
    for name in ("ed25519", "mallory"):
        generate_keypair(d / name, comment=ID)
    return {"ed25519": d / "ed25519", "mallory": d / "mallory"}


@pytest.fixture(scope="module")
def alice(keys: dict[str, Path]) -> PrivateKey:
    return load_private_key(keys["ed25519"])


@pytest.fixture(scope="module")
def allowed(keys: dict[str, Path]) -> list[AllowedSigner]:
    return parse_allowed_signers(f"{ID} {pub_fields(keys['ed25519'])}\n")


# --------------------------------------------------------------------------- keys


def _dsa_key(path: Path) -> Path:
    """A DSA private key in OpenSSH's format (what `ssh-keygen -t dsa` writes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cryptography deprecates SSH DSA keys
        key = dsa.generate_private_key(1024)
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.OpenSSH,
                serialization.NoEncryption(),
            )
        )
    return path


def test_unusable_private_keys(tmp_path: Path) -> None:
    assert "not found" in _key_error(tmp_path / "missing", None)
    (tmp_path / "text").write_text("not a key\n")
    assert "not a private key" in _key_error(tmp_path / "text", None)
    dsa_key = _dsa_key(tmp_path / "dsa")
    assert "unsupported key type DSA" in _key_error(dsa_key, None)


def test_public_key_file_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.pub").write_text("ssh-ed25519 notbase64!\n")
    with pytest.raises(KitError) as e:
        load_public_key(tmp_path / "bad.pub")
    assert e.value.code == ExitCode.KEY_ERROR
    with pytest.raises(KitError) as e:
        load_public_key(tmp_path / "missing.pub")
    assert e.value.code == ExitCode.NOT_FOUND


# --------------------------------------------------------------------------- rejections


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
    assume("\0" not in ns)  # a namespace is a C string in OpenSSH
    sig = sshsig.sign(data, alice, ns)
    assert sshsig.verify(data, sig, namespace=ns, allowed_signers=allowed).principals == (ID,)


# --------------------------------------------------------------------------- allowed_signers

OTHER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGT2Gy1ckcudi8cG2f1S2Zb6Lx5d2XazA3KIaXdrAQa0"


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
