"""OpenSSH signatures (the SSHSIG format of OpenSSH's PROTOCOL.sshsig).

``sign`` produces what ``ssh-keygen -Y sign`` produces and ``verify`` accepts what it
makes, checked against an ``allowed_signers`` file (ssh-keygen(1), "ALLOWED SIGNERS") or
one public key. Keys and primitives come from ``cryptography``; only the SSHSIG framing
is written here (the wire format is in ``kit.signing.wire``). Supported keys: Ed25519, ECDSA
(nistp256/384/521) and RSA (>= 1024 bits, signed with rsa-sha2-512). Certificates and
security-key (sk-*) keys are not.

Wire format (all integers big-endian; ``string`` is a uint32 length and bytes)::

    signature blob:  "SSHSIG" uint32(1) string(publickey) string(namespace)
                     string(reserved) string(hash_alg) string(signature)
    signed message:  "SSHSIG" string(namespace) string("") string(hash_alg)
                     string(H(data))
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from kit.errors import ExitCode, KitError
from kit.signing.allowed_signers import AllowedSigner
from kit.signing.wire import (
    ARMOR_BEGIN,
    ARMOR_END,
    CURVES,
    HASH_ALGORITHM,
    HASHES,
    MAGIC,
    NAMESPACE,
    RSA_SIG_HASHES,
    RSA_SIGNATURE_TYPE,
    VERSION,
    PrivateKey,
    PublicKey,
    Reader,
    armor,
    blob_type,
    check_supported,
    decode_public_blob,
    ecdsa_type,
    fingerprint,
    pack_mpint,
    pack_string,
    public_blob,
    signed_message,
)

# --------------------------------------------------------------------------- errors


class _SignatureError(KitError):
    """A signature refused; each subclass carries its exit code as ``CODE``."""

    CODE: ClassVar[ExitCode] = ExitCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message, self.CODE)


class Unsigned(_SignatureError):
    """No signature at all, where the policy asks for one."""

    CODE = ExitCode.UNSIGNED


class MalformedSignature(_SignatureError):
    """Not a parseable SSHSIG signature (or one using an unsupported key or hash)."""

    CODE = ExitCode.MALFORMED_SIGNATURE


class WrongNamespace(_SignatureError):
    """Signed under another namespace than the expected one."""

    CODE = ExitCode.WRONG_NAMESPACE


class BadSignature(_SignatureError):
    """The signature does not match the data under the key it names."""

    CODE = ExitCode.BAD_SIGNATURE


class KeyNotAllowed(_SignatureError):
    """A valid signature, but by a key that is not allowed (for this identity/namespace)."""

    CODE = ExitCode.KEY_NOT_ALLOWED


# --------------------------------------------------------------------------- signing


class Signer(Protocol):
    """One key that signs SSHSIG's signed data: a private key file's, or ssh-agent's."""

    @property
    def public_key_blob(self) -> bytes:
        """The SSH wire blob of the public key."""
        ...

    def sign(self, message: bytes) -> bytes:
        """The SSH signature blob (``string(type) string(sig)``) of ``message``."""
        ...


@dataclass(frozen=True)
class FileKeySigner:
    """Signs with a private key loaded from a file (Ed25519, ECDSA, RSA as rsa-sha2-512)."""

    key: PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        try:
            check_supported(self.key)
        except ValueError as e:
            raise KitError(f"unsupported key type: {e}", ExitCode.KEY_ERROR) from None

    @property
    def public_key_blob(self) -> bytes:
        """The SSH wire blob of the key's public half."""
        return public_blob(self.key.public_key())

    def sign(self, message: bytes) -> bytes:
        """The SSH signature blob of ``message``."""
        key = self.key
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return pack_string("ssh-ed25519") + pack_string(key.sign(message))
        if isinstance(key, ec.EllipticCurvePrivateKey):
            key_type = ecdsa_type(key)
            assert key_type is not None  # checked by check_supported
            r, s = decode_dss_signature(key.sign(message, ec.ECDSA(CURVES[key_type][1]())))
            return pack_string(key_type) + pack_string(pack_mpint(r) + pack_mpint(s))
        raw = key.sign(message, padding.PKCS1v15(), hashes.SHA512())
        return pack_string(RSA_SIGNATURE_TYPE) + pack_string(raw)


def sign_with(signer: Signer, data: bytes, namespace: str = NAMESPACE) -> str:
    """Armored SSHSIG signature of ``data`` (sha512) by ``signer``, as ``ssh-keygen -Y sign``.

    The signature is checked before it is returned (its type: rsa-sha2-512 for RSA; and that
    it verifies under the signer's key), so a signer that misbehaves raises KEY_ERROR rather
    than yielding a bundle that fails verification later.
    """
    if not namespace:
        raise KitError("the signature namespace must not be empty", ExitCode.USAGE)
    key_blob = signer.public_key_blob
    sig_blob = signer.sign(signed_message(data, namespace, HASH_ALGORITHM))
    blob = (
        MAGIC
        + VERSION.to_bytes(4, "big")
        + pack_string(key_blob)
        + pack_string(namespace)
        + pack_string(b"")
        + pack_string(HASH_ALGORITHM)
        + pack_string(sig_blob)
    )
    try:
        sig = _parse_blob(blob)
    except (ValueError, UnicodeDecodeError) as e:
        raise KitError(
            f"the signer returned a malformed signature: {e}", ExitCode.KEY_ERROR
        ) from None
    if sig.key_type == "ssh-rsa" and sig.signature_type != RSA_SIGNATURE_TYPE:
        raise KitError(
            f"the signer returned a {sig.signature_type} signature for RSA key "
            f"{sig.fingerprint}, not {RSA_SIGNATURE_TYPE}",
            ExitCode.KEY_ERROR,
        )
    try:
        _check_cryptographic(data, sig)
    except BadSignature as e:
        raise KitError(
            f"the signer returned a signature that does not verify: {e}", ExitCode.KEY_ERROR
        ) from None
    return armor(blob)


def sign(data: bytes, key: PrivateKey, namespace: str = NAMESPACE) -> str:
    """Armored SSHSIG signature of ``data`` (sha512) by a private key (see ``sign_with``)."""
    return sign_with(FileKeySigner(key), data, namespace)


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Signature:
    """A parsed SSHSIG signature (framing checked, not yet verified)."""

    public_key_blob: bytes
    namespace: str
    hash_algorithm: str
    signature_blob: bytes  # string(sig type) string(sig bytes)
    key_type: str  # e.g. "ssh-ed25519"
    signature_type: str  # e.g. "rsa-sha2-512"
    fingerprint: str
    public_key: PublicKey = field(repr=False, compare=False)


def parse_signature(armored: str | bytes) -> Signature:
    """Parse armored SSHSIG text; raise MalformedSignature on anything off."""
    if isinstance(armored, bytes):
        try:
            armored = armored.decode("ascii")
        except UnicodeDecodeError:
            raise MalformedSignature("signature is not ASCII armor") from None
    text = armored.strip()
    if (
        not text.startswith(ARMOR_BEGIN)
        or not text.endswith(ARMOR_END)
        or len(text) < len(ARMOR_BEGIN) + len(ARMOR_END)
    ):
        raise MalformedSignature(f"not an SSH signature (no {ARMOR_BEGIN} ... {ARMOR_END})")
    body = "".join(text[len(ARMOR_BEGIN) : -len(ARMOR_END)].split())
    try:
        blob = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedSignature("SSH signature armor is not valid base64") from None
    try:
        return _parse_blob(blob)
    except (ValueError, UnicodeDecodeError) as e:
        raise MalformedSignature(f"malformed SSH signature: {e}") from None


def _parse_blob(blob: bytes) -> Signature:
    r = Reader(blob)
    if r.take(6) != MAGIC:
        raise ValueError("no SSHSIG preamble")
    version = r.uint32()
    if version != VERSION:
        raise ValueError(f"unsupported SSHSIG version {version}")
    key_blob = r.string()
    namespace = r.text()
    r.string()  # reserved: ignored, as OpenSSH does
    hash_alg = r.text()
    sig_blob = r.string()
    r.end()
    if not namespace:
        raise ValueError("empty namespace")
    if hash_alg not in HASHES:
        raise ValueError(f"unsupported hash algorithm {hash_alg!r}")
    key = decode_public_blob(key_blob)
    s = Reader(sig_blob)
    sig_type = s.text()
    raw = s.string()
    s.end()
    if isinstance(key, ec.EllipticCurvePublicKey):
        inner = Reader(raw)
        inner.mpint(), inner.mpint()
        inner.end()
    elif isinstance(key, ed25519.Ed25519PublicKey) and len(raw) != 64:
        raise ValueError("Ed25519 signature is not 64 bytes")
    return Signature(
        public_key_blob=key_blob,
        namespace=namespace,
        hash_algorithm=hash_alg,
        signature_blob=sig_blob,
        key_type=blob_type(key_blob),
        signature_type=sig_type,
        fingerprint=fingerprint(key_blob),
        public_key=key,
    )


def _check_cryptographic(data: bytes, sig: Signature) -> None:
    """Raise BadSignature unless ``sig`` is a valid signature of ``data`` by its own key."""
    message = signed_message(data, sig.namespace, sig.hash_algorithm)
    r = Reader(sig.signature_blob)
    sig_type, raw = r.text(), r.string()
    key = sig.public_key
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            if sig_type != "ssh-ed25519":
                raise BadSignature(f"{sig_type} signature made with an Ed25519 key")
            key.verify(raw, message)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            if sig_type != sig.key_type:
                raise BadSignature(f"{sig_type} signature made with an {sig.key_type} key")
            inner = Reader(raw)
            der = encode_dss_signature(inner.mpint(), inner.mpint())
            key.verify(der, message, ec.ECDSA(CURVES[sig.key_type][1]()))
        else:
            if sig_type not in RSA_SIG_HASHES:
                raise BadSignature(
                    f"RSA signature uses {sig_type} (SHA-1), which is not allowed"
                    if sig_type == "ssh-rsa"
                    else f"{sig_type} signature made with an RSA key"
                )
            size = (key.key_size + 7) // 8
            if len(raw) > size:
                raise BadSignature("RSA signature is longer than the key's modulus")
            key.verify(
                raw.rjust(size, b"\0"), message, padding.PKCS1v15(), RSA_SIG_HASHES[sig_type]()
            )
    except InvalidSignature:
        raise BadSignature(
            f"bad signature by {sig.fingerprint}: the data was changed after signing, "
            "or the signature is for other data"
        ) from None


# --------------------------------------------------------------------------- verifying


@dataclass(frozen=True)
class VerifiedSigner:
    """Who made a good signature."""

    principals: tuple[str, ...]  # the identity checked, or the matching lines' principals
    key_type: str
    fingerprint: str
    namespace: str


def verify(
    data: bytes,
    armored: str | bytes,
    *,
    namespace: str = NAMESPACE,
    allowed_signers: list[AllowedSigner] | None = None,
    identity: str | None = None,
    public_key: PublicKey | None = None,
    now: datetime | None = None,
) -> VerifiedSigner:
    """Check ``armored`` over ``data``; raise a KitError subclass on the first failure.

    Order: MalformedSignature, WrongNamespace, BadSignature (against the key in the
    signature), then KeyNotAllowed (not in ``allowed_signers`` for ``identity`` and the
    namespace, outside valid-after/valid-before at ``now`` (default: the current time),
    or not ``public_key``).
    """
    if (allowed_signers is None) == (public_key is None):
        raise KitError("give exactly one of allowed_signers or public_key", ExitCode.USAGE)
    if identity is not None and allowed_signers is None:
        raise KitError("an identity needs allowed_signers", ExitCode.USAGE)
    sig = parse_signature(armored)
    if sig.namespace != namespace:
        raise WrongNamespace(
            f"signature is for namespace {sig.namespace!r}, expected {namespace!r}"
        )
    _check_cryptographic(data, sig)
    if public_key is not None:
        if public_blob(public_key) != sig.public_key_blob:
            raise KeyNotAllowed(
                f"signed by {sig.key_type} key {sig.fingerprint}, "
                f"not by the given public key {fingerprint(public_key)}"
            )
        return VerifiedSigner((), sig.key_type, sig.fingerprint, sig.namespace)
    assert allowed_signers is not None
    return _check_allowed(sig, allowed_signers, identity, now or datetime.now(UTC))


def _check_allowed(
    sig: Signature, signers: list[AllowedSigner], identity: str | None, now: datetime
) -> VerifiedSigner:
    principals: list[str] = []
    reasons: list[str] = []
    for entry in signers:
        if entry.key_blob != sig.public_key_blob:
            continue
        where = f"allowed_signers line {entry.line}"
        if identity is not None and not entry.allows_principal(identity):
            reasons.append(f"{where} is for {','.join(entry.principals)}, not {identity!r}")
        elif entry.cert_authority:
            reasons.append(f"{where} is a cert-authority (certificates are not supported)")
        elif not entry.allows_namespace(sig.namespace):
            reasons.append(f"{where} does not allow namespace {sig.namespace!r}")
        elif entry.valid_after is not None and now < entry.valid_after:
            reasons.append(f"{where}: key not valid until {entry.valid_after.isoformat()}")
        elif entry.valid_before is not None and now > entry.valid_before:
            reasons.append(f"{where}: key expired at {entry.valid_before.isoformat()}")
        else:
            principals.extend(p for p in entry.principals if p not in principals)
    if principals:
        found = (identity,) if identity is not None else tuple(principals)
        return VerifiedSigner(found, sig.key_type, sig.fingerprint, sig.namespace)
    who = f"{sig.key_type} key {sig.fingerprint}"
    if not reasons:
        raise KeyNotAllowed(f"signed by {who}, which is not in allowed_signers")
    raise KeyNotAllowed(f"signed by {who}, which is not allowed: {'; '.join(reasons)}")
