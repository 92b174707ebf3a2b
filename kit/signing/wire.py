"""The SSH wire format that SSHSIG signatures and OpenSSH keys are made of.

All integers are big-endian; a ``string`` is a uint32 length and that many bytes; an
``mpint`` is a string holding a two's-complement integer (RFC 4251, section 5). Also here:
the supported key types, key blobs, fingerprints and the ASCII armor of a signature.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

NAMESPACE = "repro-kit"
HASH_ALGORITHM = "sha512"
ARMOR_BEGIN = "-----BEGIN SSH SIGNATURE-----"
ARMOR_END = "-----END SSH SIGNATURE-----"
MAGIC = b"SSHSIG"
VERSION = 1
HASHES = ("sha256", "sha512")  # the hash algorithms OpenSSH accepts in SSHSIG
RSA_MIN_BITS = 1024  # OpenSSH's SSH_RSA_MINIMUM_MODULUS_SIZE
CURVES: dict[str, tuple[type[ec.EllipticCurve], type[hashes.HashAlgorithm]]] = {
    "ecdsa-sha2-nistp256": (ec.SECP256R1, hashes.SHA256),
    "ecdsa-sha2-nistp384": (ec.SECP384R1, hashes.SHA384),
    "ecdsa-sha2-nistp521": (ec.SECP521R1, hashes.SHA512),
}
RSA_SIG_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "rsa-sha2-256": hashes.SHA256,
    "rsa-sha2-512": hashes.SHA512,
}
RSA_SIGNATURE_TYPE = "rsa-sha2-512"  # what the kit signs RSA keys with
SUPPORTED_KEY_TYPES = ("ssh-ed25519", *CURVES, "ssh-rsa")

PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey
PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def pack_string(value: bytes | str) -> bytes:
    """An SSH ``string``: uint32 length, then the bytes (``str`` is UTF-8 encoded)."""
    raw = value.encode() if isinstance(value, str) else value
    return len(raw).to_bytes(4, "big") + raw


def pack_mpint(value: int) -> bytes:
    """A non-negative SSH mpint (a leading zero byte when the high bit is set)."""
    return pack_string(value.to_bytes((value.bit_length() + 8) // 8, "big") if value else b"")


class Reader:
    """Reads SSH wire fields; raises ValueError on truncation or bad values."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        """The next ``n`` raw bytes."""
        if n > len(self.data) - self.pos:
            raise ValueError("truncated")
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def uint32(self) -> int:
        """The next big-endian uint32."""
        return int.from_bytes(self.take(4), "big")

    def string(self) -> bytes:
        """The next ``string``'s bytes."""
        return self.take(self.uint32())

    def text(self) -> str:
        """The next ``string`` as UTF-8 text without NUL bytes."""
        raw = self.string()
        if b"\0" in raw:
            raise ValueError("NUL in a text field")
        return raw.decode("utf-8")

    def mpint(self) -> int:
        """The next ``mpint``; negative ones are refused."""
        raw = self.string()
        if raw and raw[0] & 0x80:
            raise ValueError("negative mpint")
        return int.from_bytes(raw, "big")

    def end(self) -> None:
        """ValueError unless every byte has been read."""
        if self.pos != len(self.data):
            raise ValueError("trailing data")


def public_blob(key: PublicKey) -> bytes:
    """The SSH wire blob of a public key (the base64 part of its ``.pub`` line, decoded)."""
    line = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return base64.b64decode(line.split()[1])


def blob_type(blob: bytes) -> str:
    """The key type a public key blob starts with, e.g. ``ssh-ed25519``."""
    return Reader(blob).text()


def decode_public_blob(blob: bytes) -> PublicKey:
    """The key in an SSH public key blob; ValueError unless a supported, canonical key."""
    key_type = blob_type(blob)
    if key_type not in SUPPORTED_KEY_TYPES:
        raise ValueError(f"unsupported key type {key_type!r}")
    try:
        key = serialization.load_ssh_public_key(key_type.encode() + b" " + base64.b64encode(blob))
    except (UnsupportedAlgorithm, ValueError) as e:
        raise ValueError(f"invalid {key_type} public key") from e
    check_supported(key)
    if not isinstance(key, PublicKey) or public_blob(key) != blob:
        raise ValueError(f"non-canonical {key_type} public key")
    return key


def check_supported(key: object) -> None:
    """ValueError (naming the type) unless an Ed25519, NIST ECDSA or RSA >= 1024 key."""
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if ecdsa_type(key) is None:
            raise ValueError(f"ECDSA on curve {key.curve.name}")
        return
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size < RSA_MIN_BITS:
            raise ValueError(f"RSA with {key.key_size} bits (OpenSSH needs >= {RSA_MIN_BITS})")
        return
    name = type(key).__name__.removesuffix("PrivateKey").removesuffix("PublicKey")
    raise ValueError(name)


def ecdsa_type(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> str | None:
    """The SSH key type of an ECDSA key (``ecdsa-sha2-nistp256``, ...); None if another curve."""
    for name, (curve, _) in CURVES.items():
        if isinstance(key.curve, curve):
            return name
    return None


def fingerprint(public_key: PublicKey | bytes) -> str:
    """``SHA256:<unpadded base64>`` of a key (or key blob), as ssh-keygen prints it."""
    blob = public_key if isinstance(public_key, bytes) else public_blob(public_key)
    digest = hashlib.sha256(blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def signed_message(data: bytes, namespace: str, hash_alg: str) -> bytes:
    """What SSHSIG actually signs: the preamble, namespace, hash name and ``H(data)``."""
    digest = hashlib.new(hash_alg, data).digest()
    fields = (namespace, b"", hash_alg, digest)
    return MAGIC + b"".join(pack_string(f) for f in fields)


def armor(blob: bytes) -> str:
    """A signature blob as ``-----BEGIN SSH SIGNATURE-----`` text, 70 columns wide."""
    b64 = base64.b64encode(blob).decode()
    lines = [b64[i : i + 70] for i in range(0, len(b64), 70)]
    return "\n".join([ARMOR_BEGIN, *lines, ARMOR_END]) + "\n"
