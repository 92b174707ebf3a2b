"""Private keys: PassphraseNeeded for an encrypted key given no passphrase."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from kit.errors import ExitCode, KitError
from kit.signing.keys import PassphraseNeeded, generate_keypair, load_private_key


@pytest.fixture
def encrypted(tmp_path: Path) -> Path:
    path = tmp_path / "id"
    generate_keypair(path, b"correct horse", "alice@example.org")
    return path


@pytest.mark.parametrize("passphrase", [None, b""])
def test_encrypted_key_without_a_passphrase(encrypted: Path, passphrase: bytes | None) -> None:
    with pytest.raises(PassphraseNeeded) as e:
        load_private_key(encrypted, passphrase)
    assert isinstance(e.value, KitError)
    assert e.value.code == PassphraseNeeded.CODE == ExitCode.KEY_ERROR
    assert e.value.message == f"private key {encrypted} is encrypted: a passphrase is needed"
    assert e.value.path == encrypted


def test_wrong_passphrase_is_not_passphrase_needed(encrypted: Path) -> None:
    with pytest.raises(KitError) as e:
        load_private_key(encrypted, b"wrong")
    assert not isinstance(e.value, PassphraseNeeded)
    assert e.value.code == ExitCode.KEY_ERROR
    assert e.value.message == f"wrong passphrase for private key {encrypted}"


def test_right_passphrase_loads_the_key(encrypted: Path) -> None:
    assert isinstance(load_private_key(encrypted, b"correct horse"), ed25519.Ed25519PrivateKey)


def test_unencrypted_key_needs_none(tmp_path: Path) -> None:
    generate_keypair(tmp_path / "id", comment="alice@example.org")
    assert load_private_key(tmp_path / "id")
    assert load_private_key(tmp_path / "id", b"ignored")


def test_other_key_errors_are_not_passphrase_needed(tmp_path: Path) -> None:
    (tmp_path / "junk").write_text("not a key")
    for path in (tmp_path / "missing", tmp_path / "junk"):
        with pytest.raises(KitError) as e:
            load_private_key(path)
        assert not isinstance(e.value, PassphraseNeeded) and e.value.code == ExitCode.KEY_ERROR


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="OpenSSH ssh-keygen not installed")
@pytest.mark.parametrize("key_type", [["-t", "ed25519"], ["-t", "ecdsa", "-b", "256"]])
def test_ssh_keygen_encrypted_keys(tmp_path: Path, key_type: list[str]) -> None:
    path = tmp_path / "k"
    subprocess.run(
        ["ssh-keygen", "-q", *key_type, "-N", "pass", "-f", str(path), "-C", "a"],
        check=True,
        capture_output=True,
    )
    with pytest.raises(PassphraseNeeded):
        load_private_key(path)
    assert load_private_key(path, b"pass")
