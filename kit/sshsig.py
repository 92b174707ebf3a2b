"""OpenSSH signatures (the SSHSIG format of OpenSSH's PROTOCOL.sshsig).

``sign`` produces what ``ssh-keygen -Y sign`` produces and ``verify`` accepts what it
makes, checked against an ``allowed_signers`` file (ssh-keygen(1), "ALLOWED SIGNERS") or
one public key. Keys and primitives come from ``cryptography``; only the SSHSIG framing
is written here. Supported keys: Ed25519, ECDSA (nistp256/384/521) and RSA (>= 1024
bits, signed with rsa-sha2-512). Certificates and security-key (sk-*) keys are not.

Wire format (all integers big-endian; ``string`` is a uint32 length and bytes)::

    signature blob:  "SSHSIG" uint32(1) string(publickey) string(namespace)
                     string(reserved) string(hash_alg) string(signature)
    signed message:  "SSHSIG" string(namespace) string("") string(hash_alg)
                     string(H(data))
"""

from __future__ import annotations

import base64
import binascii
import getpass
import hashlib
import re
import socket
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from kit.errors import ExitCode, KitError
from kit.fsio import atomic_write_bytes

NAMESPACE = "repro-kit"
HASH_ALGORITHM = "sha512"
ARMOR_BEGIN = "-----BEGIN SSH SIGNATURE-----"
ARMOR_END = "-----END SSH SIGNATURE-----"
_MAGIC = b"SSHSIG"
_VERSION = 1
_HASHES = ("sha256", "sha512")  # the hash algorithms OpenSSH accepts in SSHSIG
_RSA_MIN_BITS = 1024  # OpenSSH's SSH_RSA_MINIMUM_MODULUS_SIZE
_CURVES: dict[str, tuple[type[ec.EllipticCurve], type[hashes.HashAlgorithm]]] = {
    "ecdsa-sha2-nistp256": (ec.SECP256R1, hashes.SHA256),
    "ecdsa-sha2-nistp384": (ec.SECP384R1, hashes.SHA384),
    "ecdsa-sha2-nistp521": (ec.SECP521R1, hashes.SHA512),
}
_RSA_SIG_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "rsa-sha2-256": hashes.SHA256,
    "rsa-sha2-512": hashes.SHA512,
}
SUPPORTED_KEY_TYPES = ("ssh-ed25519", *_CURVES, "ssh-rsa")

PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey
PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


# --------------------------------------------------------------------------- errors


class _SignatureError(KitError):
    CODE: ClassVar[ExitCode] = ExitCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message, self.CODE)


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


# --------------------------------------------------------------------------- wire format


def _string(value: bytes | str) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    return len(raw).to_bytes(4, "big") + raw


def _mpint(value: int) -> bytes:
    """A non-negative SSH mpint (a leading zero byte when the high bit is set)."""
    return _string(value.to_bytes((value.bit_length() + 8) // 8, "big") if value else b"")


class _Reader:
    """Reads SSH wire fields; raises ValueError on truncation or bad values."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            raise ValueError("truncated")
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def uint32(self) -> int:
        return int.from_bytes(self.take(4), "big")

    def string(self) -> bytes:
        return self.take(self.uint32())

    def text(self) -> str:
        raw = self.string()
        if b"\0" in raw:
            raise ValueError("NUL in a text field")
        return raw.decode("utf-8")

    def mpint(self) -> int:
        raw = self.string()
        if raw and raw[0] & 0x80:
            raise ValueError("negative mpint")
        return int.from_bytes(raw, "big")

    def end(self) -> None:
        if self.pos != len(self.data):
            raise ValueError("trailing data")


def _public_blob(key: PublicKey) -> bytes:
    line = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return base64.b64decode(line.split()[1])


def _blob_type(blob: bytes) -> str:
    return _Reader(blob).text()


def _decode_public_blob(blob: bytes) -> PublicKey:
    """The key in an SSH public key blob; ValueError unless a supported, canonical key."""
    key_type = _blob_type(blob)
    if key_type not in SUPPORTED_KEY_TYPES:
        raise ValueError(f"unsupported key type {key_type!r}")
    try:
        key = serialization.load_ssh_public_key(key_type.encode() + b" " + base64.b64encode(blob))
    except (UnsupportedAlgorithm, ValueError) as e:
        raise ValueError(f"invalid {key_type} public key") from e
    _check_supported(key)
    if not isinstance(key, PublicKey) or _public_blob(key) != blob:
        raise ValueError(f"non-canonical {key_type} public key")
    return key


def _check_supported(key: object) -> None:
    """ValueError (naming the type) unless an Ed25519, NIST ECDSA or RSA >= 1024 key."""
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if _ecdsa_type(key) is None:
            raise ValueError(f"ECDSA on curve {key.curve.name}")
        return
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size < _RSA_MIN_BITS:
            raise ValueError(f"RSA with {key.key_size} bits (OpenSSH needs >= {_RSA_MIN_BITS})")
        return
    name = type(key).__name__.removesuffix("PrivateKey").removesuffix("PublicKey")
    raise ValueError(name)


def _ecdsa_type(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> str | None:
    for name, (curve, _) in _CURVES.items():
        if isinstance(key.curve, curve):
            return name
    return None


def fingerprint(public_key: PublicKey | bytes) -> str:
    """``SHA256:<unpadded base64>`` of a key (or key blob), as ssh-keygen prints it."""
    blob = public_key if isinstance(public_key, bytes) else _public_blob(public_key)
    digest = hashlib.sha256(blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _signed_message(data: bytes, namespace: str, hash_alg: str) -> bytes:
    digest = hashlib.new(hash_alg, data).digest()
    return _MAGIC + _string(namespace) + _string(b"") + _string(hash_alg) + _string(digest)


def _armor(blob: bytes) -> str:
    b64 = base64.b64encode(blob).decode()
    lines = [b64[i : i + 70] for i in range(0, len(b64), 70)]
    return "\n".join([ARMOR_BEGIN, *lines, ARMOR_END]) + "\n"


# --------------------------------------------------------------------------- signing


def sign(data: bytes, key: PrivateKey, namespace: str = NAMESPACE) -> str:
    """Armored SSHSIG signature of ``data`` (sha512), as ``ssh-keygen -Y sign`` writes it."""
    if not namespace:
        raise KitError("the signature namespace must not be empty", ExitCode.USAGE)
    try:
        _check_supported(key)
    except ValueError as e:
        raise KitError(f"unsupported key type: {e}", ExitCode.KEY_ERROR) from None
    message = _signed_message(data, namespace, HASH_ALGORITHM)
    public = key.public_key()
    if isinstance(key, ed25519.Ed25519PrivateKey):
        sig = _string("ssh-ed25519") + _string(key.sign(message))
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        key_type = _ecdsa_type(key)
        assert key_type is not None  # checked by _check_supported
        r, s = decode_dss_signature(key.sign(message, ec.ECDSA(_CURVES[key_type][1]())))
        sig = _string(key_type) + _string(_mpint(r) + _mpint(s))
    else:
        raw = key.sign(message, padding.PKCS1v15(), hashes.SHA512())
        sig = _string("rsa-sha2-512") + _string(raw)
    blob = (
        _MAGIC
        + _VERSION.to_bytes(4, "big")
        + _string(_public_blob(public))
        + _string(namespace)
        + _string(b"")
        + _string(HASH_ALGORITHM)
        + _string(sig)
    )
    return _armor(blob)


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
    r = _Reader(blob)
    if r.take(6) != _MAGIC:
        raise ValueError("no SSHSIG preamble")
    version = r.uint32()
    if version != _VERSION:
        raise ValueError(f"unsupported SSHSIG version {version}")
    key_blob = r.string()
    namespace = r.text()
    r.string()  # reserved: ignored, as OpenSSH does
    hash_alg = r.text()
    sig_blob = r.string()
    r.end()
    if not namespace:
        raise ValueError("empty namespace")
    if hash_alg not in _HASHES:
        raise ValueError(f"unsupported hash algorithm {hash_alg!r}")
    key = _decode_public_blob(key_blob)
    s = _Reader(sig_blob)
    sig_type = s.text()
    raw = s.string()
    s.end()
    if isinstance(key, ec.EllipticCurvePublicKey):
        inner = _Reader(raw)
        inner.mpint(), inner.mpint()
        inner.end()
    elif isinstance(key, ed25519.Ed25519PublicKey) and len(raw) != 64:
        raise ValueError("Ed25519 signature is not 64 bytes")
    return Signature(
        public_key_blob=key_blob,
        namespace=namespace,
        hash_algorithm=hash_alg,
        signature_blob=sig_blob,
        key_type=_blob_type(key_blob),
        signature_type=sig_type,
        fingerprint=fingerprint(key_blob),
        public_key=key,
    )


def _check_cryptographic(data: bytes, sig: Signature) -> None:
    """Raise BadSignature unless ``sig`` is a valid signature of ``data`` by its own key."""
    message = _signed_message(data, sig.namespace, sig.hash_algorithm)
    r = _Reader(sig.signature_blob)
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
            inner = _Reader(raw)
            der = encode_dss_signature(inner.mpint(), inner.mpint())
            key.verify(der, message, ec.ECDSA(_CURVES[sig.key_type][1]()))
        else:
            if sig_type not in _RSA_SIG_HASHES:
                raise BadSignature(
                    f"RSA signature uses {sig_type} (SHA-1), which is not allowed"
                    if sig_type == "ssh-rsa"
                    else f"{sig_type} signature made with an RSA key"
                )
            size = (key.key_size + 7) // 8
            if len(raw) > size:
                raise BadSignature("RSA signature is longer than the key's modulus")
            key.verify(
                raw.rjust(size, b"\0"), message, padding.PKCS1v15(), _RSA_SIG_HASHES[sig_type]()
            )
    except InvalidSignature:
        raise BadSignature(
            f"bad signature by {sig.fingerprint}: the data was changed after signing, "
            "or the signature is for other data"
        ) from None


# --------------------------------------------------------------------------- allowed_signers


def _match_pattern(value: str, pattern: str) -> bool:
    """OpenSSH match_pattern: ``*`` any run, ``?`` one character, case-sensitive."""
    regex = "".join({"*": ".*", "?": "."}.get(c) or re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


def _match_list(value: str, patterns: tuple[str, ...]) -> bool:
    """OpenSSH match_pattern_list: any positive match and no ``!negated`` match."""
    matched = False
    for pattern in patterns:
        if pattern.startswith("!"):
            if _match_pattern(value, pattern[1:]):
                return False
        elif _match_pattern(value, pattern):
            matched = True
    return matched


@dataclass(frozen=True)
class AllowedSigner:
    """One line of an allowed_signers file."""

    principals: tuple[str, ...]  # patterns, ``*``/``?`` wildcards, ``!`` negation
    key_type: str
    key_blob: bytes
    namespaces: tuple[str, ...] | None = None  # patterns; None: any namespace
    cert_authority: bool = False
    valid_after: datetime | None = None
    valid_before: datetime | None = None
    line: int = 0

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.key_blob)

    def allows_principal(self, identity: str) -> bool:
        return _match_list(identity, self.principals)

    def allows_namespace(self, namespace: str) -> bool:
        return self.namespaces is None or _match_list(namespace, self.namespaces)


def _parse_time(value: str) -> datetime:
    """OpenSSH's YYYYMMDD[HHMM[SS]][Z] (local time unless Z)."""
    utc = value[-1:] in ("Z", "z")
    digits = value[:-1] if utc else value
    fmt = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}.get(len(digits))
    if fmt is None or not digits.isdigit():
        raise ValueError(f"bad time {value!r} (expected YYYYMMDD[HHMM[SS]][Z])")
    moment = datetime.strptime(digits, fmt)
    return moment.replace(tzinfo=UTC) if utc else moment.astimezone()


def _take_token(s: str) -> tuple[str, str]:
    """The leading whitespace-delimited token (a ``"..."`` part may hold spaces), rest."""
    i = 0
    while i < len(s) and not s[i].isspace() and s[i] != '"':
        i += 1
    if i < len(s) and s[i] == '"':
        j = s.find('"', i + 1)
        if j < 0:
            raise ValueError("unterminated quote")
        return s[:i] + s[i + 1 : j], s[j + 1 :]
    return s[:i], s[i:]


def _split_options(s: str) -> tuple[list[str], str]:
    """Comma-separated options up to the first unquoted blank, and the rest of the line."""
    options, current, quoted, i = [], "", False, 0
    while i < len(s) and (quoted or s[i] not in " \t"):
        if s[i] == "\\" and s[i + 1 : i + 2] == '"':
            current += '\\"'
            i += 2
            continue
        if s[i] == '"':
            quoted = not quoted
        if s[i] == "," and not quoted:
            options.append(current)
            current = ""
        else:
            current += s[i]
        i += 1
    if quoted:
        raise ValueError("unterminated quote in options")
    return [*options, current], s[i:]


def _dequote(name: str, value: str) -> str:
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        raise ValueError(f"{name} value must be in double quotes")
    return value[1:-1].replace('\\"', '"')


def _read_key(s: str) -> tuple[str, bytes] | None:
    """``(type, blob)`` if ``s`` starts with ``keytype base64``, else None."""
    parts = s.split(None, 2)
    if len(parts) < 2:
        return None
    try:
        blob = base64.b64decode(parts[1], validate=True)
        return (parts[0], blob) if _blob_type(blob) == parts[0] else None
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None


def _parse_signer_line(line: str, lineno: int) -> AllowedSigner:
    principals, rest = _take_token(line.strip())
    if not principals or not rest.strip():
        raise ValueError("expected: principals [options] keytype base64-key")
    rest = rest.lstrip()
    key = _read_key(rest)
    values: dict[str, str] = {}
    if key is None:
        options, rest = _split_options(rest)
        key = _read_key(rest.lstrip())
        if key is None:
            raise ValueError("no valid public key (keytype base64-key)")
        for option in options:
            name, eq, value = option.partition("=")
            name = name.lower()
            if name not in ("cert-authority", "namespaces", "valid-after", "valid-before"):
                raise ValueError(f"unknown option {name!r}")
            if name in values:
                raise ValueError(f"option {name!r} given twice")
            if (name == "cert-authority") == bool(eq):
                raise ValueError(f"option {name!r} {'takes no' if eq else 'needs a'} value")
            values[name] = _dequote(name, value) if eq else ""
    ns = values.get("namespaces")
    after, before = values.get("valid-after"), values.get("valid-before")
    return AllowedSigner(
        principals=tuple(principals.split(",")),
        key_type=key[0],
        key_blob=key[1],
        namespaces=tuple(ns.split(",")) if ns is not None else None,
        cert_authority="cert-authority" in values,
        valid_after=_parse_time(after) if after is not None else None,
        valid_before=_parse_time(before) if before is not None else None,
        line=lineno,
    )


def parse_allowed_signers(text: str) -> list[AllowedSigner]:
    """Parse allowed_signers text (ssh-keygen(1) "ALLOWED SIGNERS"); KitError(USAGE) if bad.

    Keys of any type are kept (unsupported ones simply never match a signature).
    """
    signers = []
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            signers.append(_parse_signer_line(stripped, lineno))
        except ValueError as e:
            raise KitError(f"allowed_signers line {lineno}: {e}", ExitCode.USAGE) from None
    return signers


def _read_text(path: Path, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KitError(f"{what} {path} not found", ExitCode.NOT_FOUND) from None
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, "strerror", None) or "not UTF-8 text"
        raise KitError(f"cannot read {what} {path}: {reason}", ExitCode.KEY_ERROR) from None


def load_allowed_signers(path: Path) -> list[AllowedSigner]:
    """Read and parse an allowed_signers file."""
    text = _read_text(path, "allowed_signers file")
    try:
        return parse_allowed_signers(text)
    except KitError as e:
        raise KitError(f"{path}: {e.message}", e.code) from None


def load_public_key(path: Path) -> PublicKey:
    """The key in an OpenSSH ``.pub`` file (``keytype base64 [comment]``)."""
    text = _read_text(path, "public key")
    lines = [s for ln in text.splitlines() if (s := ln.strip()) and not s.startswith("#")]
    key = _read_key(lines[0]) if len(lines) == 1 else None
    if key is None:
        raise KitError(f"{path} is not an OpenSSH public key line", ExitCode.KEY_ERROR)
    try:
        return _decode_public_blob(key[1])
    except ValueError as e:
        raise KitError(f"{path}: {e}", ExitCode.KEY_ERROR) from None


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
        if _public_blob(public_key) != sig.public_key_blob:
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


# --------------------------------------------------------------------------- keys


def _load_private(data: bytes, passphrase: bytes | None) -> object:
    loader = (
        serialization.load_ssh_private_key
        if b"-----BEGIN OPENSSH PRIVATE KEY-----" in data
        else serialization.load_pem_private_key
    )
    with warnings.catch_warnings():  # e.g. "SSH DSA keys are deprecated": we reject them
        warnings.simplefilter("ignore")
        return loader(data, passphrase)


def load_private_key(path: Path, passphrase: bytes | None = None) -> PrivateKey:
    """An Ed25519, ECDSA or RSA private key from an OpenSSH or PEM file.

    Raises KitError(KEY_ERROR) for a missing file, a needed or wrong passphrase, an
    unsupported key type, or a file that is not a private key. A passphrase given for an
    unencrypted key is ignored, as ssh-keygen does.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KitError(f"private key {path} not found", ExitCode.KEY_ERROR) from None
    except OSError as e:
        raise KitError(
            f"cannot read private key {path}: {e.strerror}", ExitCode.KEY_ERROR
        ) from None
    try:
        try:
            key = _load_private(data, None)
        except TypeError:  # encrypted
            if not passphrase:
                raise KitError(
                    f"private key {path} is encrypted: a passphrase is needed", ExitCode.KEY_ERROR
                ) from None
            try:
                key = _load_private(data, passphrase)
            except ValueError:
                raise KitError(
                    f"wrong passphrase for private key {path}", ExitCode.KEY_ERROR
                ) from None
    except UnsupportedAlgorithm:
        raise KitError(
            f"private key {path} uses an unsupported key type or cipher "
            "(supported: Ed25519, ECDSA, RSA)",
            ExitCode.KEY_ERROR,
        ) from None
    except ValueError:
        raise KitError(
            f"{path} is not a private key (expected OpenSSH or PEM format)", ExitCode.KEY_ERROR
        ) from None
    try:
        _check_supported(key)
    except ValueError as e:
        raise KitError(
            f"private key {path} has unsupported key type {e} (supported: Ed25519, ECDSA, RSA)",
            ExitCode.KEY_ERROR,
        ) from None
    if not isinstance(key, PrivateKey):
        raise KitError(f"{path} is not a private key", ExitCode.KEY_ERROR)
    return key


def _default_identity() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "user"
    return f"{user}@{socket.gethostname() or 'localhost'}"


def generate_keypair(path: Path, passphrase: bytes | None = None, comment: str = "") -> str:
    """Write a new Ed25519 key pair (``path`` mode 0600, ``path.pub``); return its
    allowed_signers line (``<identity> namespaces="repro-kit" ssh-ed25519 AAAA...``).

    ``comment`` (default ``user@host``) is the identity; it must be one word (no blanks or
    quotes). Refuses to overwrite either file. An empty passphrase means none.
    """
    path = Path(path)
    pub_path = path.with_name(path.name + ".pub")
    identity = comment or _default_identity()
    if any(c.isspace() or c == '"' for c in identity):
        raise KitError(
            f"key comment {identity!r} must be one identity with no blanks or quotes, "
            "such as an email address",
            ExitCode.USAGE,
        )
    for p in (path, pub_path):
        if p.exists() or p.is_symlink():
            raise KitError(f"{p} already exists; not overwriting it", ExitCode.KEY_ERROR)
    key = ed25519.Ed25519PrivateKey.generate()
    encryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption
    )
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # like ssh-keygen's ~/.ssh
    # atomic_write_bytes writes a mkstemp file (created 0600) and renames it into place.
    atomic_write_bytes(path, private, mode=0o600)
    try:
        atomic_write_bytes(pub_path, f"{public} {identity}\n".encode(), mode=0o644)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return f'{identity} namespaces="{NAMESPACE}" {public}'
