"""sshsig.sign_with checks what a signer returns before it becomes a bundle's signature."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from kit.errors import ExitCode, KitError
from kit.signing import sshsig
from kit.signing.wire import pack_string, public_blob

DATA = b"manifest bytes"


@dataclass
class Returns:
    """A signer (as ssh-agent would be) that answers with a fixed blob, whatever it is asked."""

    public_key_blob: bytes
    blob: bytes

    def sign(self, message: bytes) -> bytes:
        return self.blob


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def refusal(signer: sshsig.Signer) -> str:
    with pytest.raises(KitError) as e:
        sshsig.sign_with(signer, DATA)
    assert e.value.code == ExitCode.KEY_ERROR
    return e.value.message


def test_file_and_foreign_signers_make_the_same_verifiable_signature() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    ours = sshsig.sign(DATA, key)
    message = sshsig.signed_message(DATA, "repro-kit", "sha512")
    foreign = Returns(public_blob(key.public_key()), sshsig.FileKeySigner(key).sign(message))
    assert sshsig.sign_with(foreign, DATA) == ours  # Ed25519 is deterministic
    assert sshsig.verify(DATA, ours, public_key=key.public_key()).key_type == "ssh-ed25519"


def test_rsa_sha1_is_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    message = sshsig.signed_message(DATA, "repro-kit", "sha512")
    raw = rsa_key.sign(message, padding.PKCS1v15(), hashes.SHA1())
    blob = pack_string("ssh-rsa") + pack_string(raw)
    line = refusal(Returns(public_blob(rsa_key.public_key()), blob))
    assert line.startswith("the signer returned a ssh-rsa signature for RSA key SHA256:")
    assert line.endswith("not rsa-sha2-512")


def test_rsa_sha2_256_is_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    message = sshsig.signed_message(DATA, "repro-kit", "sha512")
    raw = rsa_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    blob = pack_string("rsa-sha2-256") + pack_string(raw)
    assert "rsa-sha2-256 signature" in refusal(Returns(public_blob(rsa_key.public_key()), blob))


def test_signature_of_other_data_is_refused() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    blob = pack_string("ssh-ed25519") + pack_string(key.sign(b"something else"))
    line = refusal(Returns(public_blob(key.public_key()), blob))
    assert line.startswith("the signer returned a signature that does not verify: bad signature")


def test_signature_by_another_key_is_refused() -> None:
    key, other = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    message = sshsig.signed_message(DATA, "repro-kit", "sha512")
    blob = sshsig.FileKeySigner(other).sign(message)
    assert "does not verify" in refusal(Returns(public_blob(key.public_key()), blob))


@pytest.mark.parametrize("blob", [b"", b"\0\0\0\x0bssh-ed25519", b"\xff" * 12])
def test_malformed_signature_blob_is_refused(blob: bytes) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    line = refusal(Returns(public_blob(key.public_key()), blob))
    assert line.startswith("the signer returned a malformed signature: ")
