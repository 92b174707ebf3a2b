"""OpenSSH signatures (SSHSIG, PROTOCOL.sshsig) with keys handled by ``cryptography``.

Only the small SSHSIG framing is written here; key parsing, signing and verification
primitives are ``cryptography``'s. Accepted keys: Ed25519, ECDSA (nistp256/384/521) and RSA
(signed as rsa-sha2-512). Signatures made here verify with ``ssh-keygen -Y verify`` and
signatures made by ``ssh-keygen -Y sign`` verify here.
"""

from __future__ import annotations

import base64
import datetime as dt
import fnmatch
import hashlib
import os
import shlex
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from kit.errors import ExitCode, KitError

NAMESPACE = "repro-kit"
MAGIC = b"SSHSIG"
VERSION = 1
BEGIN = "-----BEGIN SSH SIGNATURE-----"
END = "-----END SSH SIGNATURE-----"
_HASHES = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}
_CURVES = {
    "nistp256": (ec.SECP256R1, hashes.SHA256),
    "nistp384": (ec.SECP384R1, hashes.SHA384),
    "nistp521": (ec.SECP521R1, hashes.SHA512),
}
KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
)

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey


class MalformedSignature(KitError):
    def __init__(self, message: str) -> None:
        super().__init__(f"malformed signature: {message}", ExitCode.MALFORMED_SIGNATURE)


class WrongNamespace(KitError):
    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.WRONG_NAMESPACE)


class BadSignature(KitError):
    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.BAD_SIGNATURE)


class KeyNotAllowed(KitError):
    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.KEY_NOT_ALLOWED)


def _key_error(message: str) -> KitError:
    return KitError(message, ExitCode.KEY_ERROR)


# ------------------------------------------------------------------ SSH wire encoding


def _string(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


def _mpint(n: int) -> bytes:
    if n == 0:
        return _string(b"")
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    if raw[0] & 0x80:
        raw = b"\x00" + raw
    return _string(raw)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def raw(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise MalformedSignature("truncated data")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint32(self) -> int:
        return struct.unpack(">I", self.raw(4))[0]

    def string(self) -> bytes:
        return self.raw(self.uint32())

    def text(self) -> str:
        try:
            return self.string().decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedSignature("non-UTF-8 text field") from None

    def mpint(self) -> int:
        return int.from_bytes(self.string(), "big", signed=True)

    def done(self) -> bool:
        return self.pos == len(self.data)


# ------------------------------------------------------------------ keys


def public_blob(key: PublicKey) -> bytes:
    """The SSH wire encoding of a public key."""
    line = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return base64.b64decode(line.split()[1])


def key_type(key: PublicKey) -> str:
    line = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return line.split()[0].decode()


def openssh_public_line(key: PublicKey, comment: str = "") -> str:
    line = key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()
    return f"{line} {comment}".strip()


def fingerprint(key: PublicKey | bytes) -> str:
    blob = key if isinstance(key, bytes) else public_blob(key)
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _load_blob(blob: bytes) -> PublicKey:
    try:
        ktype = _Reader(blob).text()
        key = serialization.load_ssh_public_key(ktype.encode() + b" " + base64.b64encode(blob))
    except (ValueError, UnsupportedAlgorithm, MalformedSignature):
        raise MalformedSignature("unreadable public key") from None
    if not isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise MalformedSignature(f"unsupported key type {ktype}")
    return key


def load_public_key(path: Path) -> PublicKey:
    """An OpenSSH public key file (``id_ed25519.pub``)."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise _key_error(f"cannot read public key {path}: {e.strerror or e}") from None
    try:
        key = serialization.load_ssh_public_key(b" ".join(data.split()[:2]))
    except (ValueError, UnsupportedAlgorithm, IndexError):
        raise _key_error(f"{path} is not an OpenSSH public key") from None
    if not isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise _key_error(f"{path}: unsupported key type (use Ed25519, ECDSA or RSA)")
    return key


def load_private_key(path: Path, passphrase: bytes | None = None) -> PrivateKey:
    """An OpenSSH (or PEM) private key; never puts key material in a message."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise _key_error(f"private key {path} not found") from None
    except OSError as e:
        raise _key_error(f"cannot read private key {path}: {e.strerror or e}") from None
    loader = (
        serialization.load_ssh_private_key
        if b"OPENSSH PRIVATE KEY" in data
        else serialization.load_pem_private_key
    )
    encrypted = _is_encrypted(loader, data)
    if encrypted and not passphrase:
        raise _key_error(
            f"private key {path} is protected by a passphrase; give it (prompt or --passphrase-env)"
        )
    try:
        key = loader(data, password=passphrase if encrypted else None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        if encrypted:
            raise _key_error(f"wrong passphrase for {path}") from None
        raise _key_error(f"{path} is not a usable private key (Ed25519, ECDSA or RSA)") from None
    if not isinstance(
        key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    ):
        raise _key_error(
            f"{path}: unsupported key type {type(key).__name__} (use Ed25519, ECDSA or RSA)"
        )
    return key


def _is_encrypted(loader: Any, data: bytes) -> bool:
    try:
        loader(data, password=None)
    except TypeError:
        return True
    except (ValueError, UnsupportedAlgorithm):
        return False
    return False


def generate_keypair(path: Path, passphrase: bytes | None = None, comment: str = "") -> str:
    """Write a new Ed25519 key pair (OpenSSH, private 0600); return its allowed_signers line."""
    path = Path(path)
    pub_path = path.with_name(path.name + ".pub")
    for p in (path, pub_path):
        if p.exists():
            raise _key_error(f"{p} exists; refusing to overwrite a key")
    key = ed25519.Ed25519PrivateKey.generate()
    enc = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, enc
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise _key_error(f"{path} exists; refusing to overwrite a key") from None
    with os.fdopen(fd, "wb") as f:
        f.write(private)
    os.chmod(path, 0o600)
    pub = openssh_public_line(key.public_key(), comment)
    pub_path.write_text(pub + "\n")
    principal = comment or "reviewer@example.org"
    return f'{principal} namespaces="{NAMESPACE}" {openssh_public_line(key.public_key())}'


# ------------------------------------------------------------------ signatures


@dataclass
class Signature:
    public_key: bytes
    namespace: str
    hash_algorithm: str
    signature: bytes
    key_type: str
    fingerprint: str


def _signed_data(message: bytes, namespace: str, hash_alg: str) -> bytes:
    digest = _HASHES[hash_alg](message).digest()
    return (
        MAGIC
        + _string(namespace.encode())
        + _string(b"")
        + _string(hash_alg.encode())
        + _string(digest)
    )


def _raw_sign(key: PrivateKey, data: bytes) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return _string(b"ssh-ed25519") + _string(key.sign(data))
    if isinstance(key, ec.EllipticCurvePrivateKey):
        curve = {256: "nistp256", 384: "nistp384", 521: "nistp521"}[key.curve.key_size]
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(_CURVES[curve][1]())))
        return _string(f"ecdsa-sha2-{curve}".encode()) + _string(_mpint(r) + _mpint(s))
    sig = key.sign(data, padding.PKCS1v15(), hashes.SHA512())
    return _string(b"rsa-sha2-512") + _string(sig)


def sign(message: bytes, key: PrivateKey, namespace: str = NAMESPACE) -> str:
    """An armored SSHSIG signature of ``message`` (sha512), as ``ssh-keygen -Y sign`` writes."""
    blob = (
        MAGIC
        + struct.pack(">I", VERSION)
        + _string(public_blob(key.public_key()))
        + _string(namespace.encode())
        + _string(b"")
        + _string(b"sha512")
        + _string(_raw_sign(key, _signed_data(message, namespace, "sha512")))
    )
    b64 = base64.b64encode(blob).decode()
    lines = [b64[i : i + 70] for i in range(0, len(b64), 70)]
    return "\n".join([BEGIN, *lines, END]) + "\n"


def parse_signature(armored: str) -> Signature:
    text = armored.strip()
    if not text.startswith(BEGIN) or not text.endswith(END):
        raise MalformedSignature("missing BEGIN/END SSH SIGNATURE lines")
    body = "".join(text[len(BEGIN) : -len(END)].split())
    try:
        blob = base64.b64decode(body, validate=True)
    except ValueError:
        raise MalformedSignature("bad base64") from None
    r = _Reader(blob)
    if r.raw(6) != MAGIC:
        raise MalformedSignature("not an SSHSIG blob")
    if r.uint32() != VERSION:
        raise MalformedSignature("unsupported SSHSIG version")
    pub = r.string()
    namespace = r.text()
    r.string()  # reserved
    hash_alg = r.text()
    sig = r.string()
    if not r.done():
        raise MalformedSignature("trailing data")
    if hash_alg not in _HASHES:
        raise MalformedSignature(f"unsupported hash algorithm {hash_alg!r}")
    key = _load_blob(pub)
    return Signature(pub, namespace, hash_alg, sig, key_type(key), fingerprint(pub))


def _raw_verify(key: PublicKey, sig_blob: bytes, data: bytes) -> None:
    r = _Reader(sig_blob)
    alg = r.text()
    raw = r.string()
    if not r.done():
        raise MalformedSignature("trailing data in signature")
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            if alg != "ssh-ed25519":
                raise MalformedSignature(f"algorithm {alg} does not match an Ed25519 key")
            key.verify(raw, data)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            curve = {256: "nistp256", 384: "nistp384", 521: "nistp521"}[key.curve.key_size]
            if alg != f"ecdsa-sha2-{curve}":
                raise MalformedSignature(f"algorithm {alg} does not match an ECDSA {curve} key")
            rr = _Reader(raw)
            der = encode_dss_signature(rr.mpint(), rr.mpint())
            key.verify(der, data, ec.ECDSA(_CURVES[curve][1]()))
        else:
            hash_cls = {"rsa-sha2-512": hashes.SHA512, "rsa-sha2-256": hashes.SHA256}.get(alg)
            if hash_cls is None:
                raise MalformedSignature(f"RSA signature algorithm {alg} not accepted")
            key.verify(raw, data, padding.PKCS1v15(), hash_cls())
    except InvalidSignature:
        raise BadSignature(
            "bad signature: the manifest was changed after signing, or the "
            "signature belongs to other data"
        ) from None


@dataclass
class AllowedSigner:
    principals: list[str]
    key_blob: bytes
    key_type: str
    namespaces: list[str] | None = None
    valid_after: dt.datetime | None = None
    valid_before: dt.datetime | None = None
    cert_authority: bool = False
    options: dict[str, str] = field(default_factory=dict)

    def matches_principal(self, identity: str) -> bool:
        ok = False
        for pattern in self.principals:
            if pattern.startswith("!"):
                if fnmatch.fnmatchcase(identity, pattern[1:]):
                    return False
            elif fnmatch.fnmatchcase(identity, pattern):
                ok = True
        return ok

    def allows_namespace(self, namespace: str) -> bool:
        if self.namespaces is None:
            return True
        return any(fnmatch.fnmatchcase(namespace, n) for n in self.namespaces)


def _parse_time(value: str) -> dt.datetime:
    v = value.rstrip("Zz")
    for fmt in ("%Y%m%d%H%M%S", "%Y%m%d%H%M", "%Y%m%d"):
        try:
            return dt.datetime.strptime(v, fmt).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
    raise ValueError(f"bad time {value!r}")


def parse_allowed_signers(text: str) -> list[AllowedSigner]:
    """The allowed_signers format of ssh-keygen(1) (and git's gpg.ssh.allowedSignersFile)."""
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            tokens = shlex.split(line, comments=False, posix=True)
        except ValueError:
            raise _key_error(f"allowed_signers line {lineno}: unbalanced quotes") from None
        if len(tokens) < 3:
            raise _key_error(
                f"allowed_signers line {lineno}: expected principals, key type and key"
            )
        principals = tokens[0].split(",")
        i = 1
        options: dict[str, str] = {}
        while i < len(tokens) and not (tokens[i] in KEY_TYPES or tokens[i].startswith("sk-")):
            for opt in tokens[i].split(","):
                name, _, value = opt.partition("=")
                options[name.lower()] = value
            i += 1
        if i + 1 >= len(tokens):
            raise _key_error(f"allowed_signers line {lineno}: no key")
        try:
            blob = base64.b64decode(tokens[i + 1], validate=True)
        except ValueError:
            raise _key_error(f"allowed_signers line {lineno}: bad base64 key") from None
        signer = AllowedSigner(principals, blob, tokens[i], options=options)
        if "namespaces" in options:
            signer.namespaces = [n for n in options["namespaces"].split(",") if n]
        try:
            if "valid-after" in options:
                signer.valid_after = _parse_time(options["valid-after"])
            if "valid-before" in options:
                signer.valid_before = _parse_time(options["valid-before"])
        except ValueError as e:
            raise _key_error(f"allowed_signers line {lineno}: {e}") from None
        signer.cert_authority = "cert-authority" in options
        out.append(signer)
    return out


def load_allowed_signers(path: Path) -> list[AllowedSigner]:
    try:
        return parse_allowed_signers(Path(path).read_text())
    except OSError as e:
        raise KitError(f"cannot read {path}: {e.strerror or e}", ExitCode.NOT_FOUND) from None


@dataclass
class VerifiedSigner:
    principals: list[str]
    key_type: str
    fingerprint: str


def verify(
    message: bytes,
    armored: str,
    *,
    namespace: str = NAMESPACE,
    allowed_signers: list[AllowedSigner] | None = None,
    identity: str | None = None,
    public_key: Any | None = None,
    now: dt.datetime | None = None,
) -> VerifiedSigner:
    """Check ``armored`` over ``message``; raise the matching error, else say who signed."""
    if (allowed_signers is None) == (public_key is None):
        raise ValueError("give exactly one of allowed_signers and public_key")
    sig = parse_signature(armored)
    if sig.namespace != namespace:
        raise WrongNamespace(f"signature namespace is {sig.namespace!r}, expected {namespace!r}")
    _raw_verify(
        _load_blob(sig.public_key),
        sig.signature,
        _signed_data(message, sig.namespace, sig.hash_algorithm),
    )
    if public_key is not None:
        if public_blob(public_key) != sig.public_key:
            raise KeyNotAllowed(
                f"signed by {sig.fingerprint}, not by the given public key "
                f"({fingerprint(public_key)})"
            )
        return VerifiedSigner([], sig.key_type, sig.fingerprint)
    now = now or dt.datetime.now(dt.UTC)
    matched: list[str] = []
    for entry in allowed_signers or []:
        if entry.cert_authority or entry.key_blob != sig.public_key:
            continue
        if not entry.allows_namespace(namespace):
            continue
        if (entry.valid_after and now < entry.valid_after) or (
            entry.valid_before and now > entry.valid_before
        ):
            continue
        if identity is not None:
            if entry.matches_principal(identity):
                return VerifiedSigner([identity], sig.key_type, sig.fingerprint)
            continue
        matched += [p for p in entry.principals if not p.startswith("!")]
    if matched:
        return VerifiedSigner(sorted(set(matched)), sig.key_type, sig.fingerprint)
    who = f" for identity {identity!r}" if identity else ""
    raise KeyNotAllowed(
        f"key {sig.fingerprint} is not in allowed_signers{who} (namespace {namespace!r})"
    )
