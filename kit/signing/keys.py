"""Private keys: load one from an OpenSSH or PEM file, or make a new Ed25519 pair."""

from __future__ import annotations

import getpass
import socket
import warnings
from pathlib import Path
from typing import ClassVar

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from kit.errors import ExitCode, KitError
from kit.fsio import atomic_write_bytes
from kit.signing.wire import NAMESPACE, PrivateKey, check_supported


class PassphraseNeeded(KitError):
    """The private key is encrypted and no passphrase (or an empty one) was given.

    A caller that can ask the user (a terminal) catches this and tries again with one.
    """

    CODE: ClassVar[ExitCode] = ExitCode.KEY_ERROR

    def __init__(self, path: Path) -> None:
        super().__init__(f"private key {path} is encrypted: a passphrase is needed", self.CODE)
        self.path = path


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

    Raises PassphraseNeeded (KEY_ERROR) for an encrypted key given no passphrase, and
    KitError(KEY_ERROR) for a missing file, a wrong passphrase, an unsupported key type, or
    a file that is not a private key. A passphrase given for an unencrypted key is ignored,
    as ssh-keygen does.
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
                raise PassphraseNeeded(path) from None
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
        check_supported(key)
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
