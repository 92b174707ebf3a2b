"""Helpers of the SSHSIG tests (unit and OpenSSH interop): the signed data, key fields, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.errors import ExitCode, KitError
from kit.signing import sshsig
from kit.signing.keys import load_private_key

ID = "alice@example.org"
DATA = b'{"manifest": "the bytes that get signed"}\n'


def pub_fields(path: Path) -> str:
    """``keytype base64`` of a .pub file."""
    return " ".join(Path(f"{path}.pub").read_text().split()[:2])


def key_error(path: Path, passphrase: bytes | None) -> str:
    """The one-line KEY_ERROR message of loading ``path``; no secret in it."""
    with pytest.raises(KitError) as e:
        load_private_key(path, passphrase)
    assert e.value.code == ExitCode.KEY_ERROR
    secret = "".join(path.read_text().splitlines()[1:-1]) if path.exists() else ""
    assert secret[:24] not in e.value.message or not secret
    assert "\n" not in e.value.message
    return e.value.message


def raises(exc: type[KitError], code: ExitCode, *args, **kwargs) -> str:
    """``sshsig.verify(*args, **kwargs)`` raises ``exc`` with ``code``; its message."""
    with pytest.raises(exc) as e:
        sshsig.verify(*args, **kwargs)
    assert e.value.code == code
    return e.value.message
