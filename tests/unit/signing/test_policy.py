"""The signature policies of kit.signing.policy, with real keys and real signatures."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kit.errors import ExitCode, KitError
from kit.signing.allowed_signers import parse_allowed_signers
from kit.signing.keys import generate_keypair, load_private_key
from kit.signing.policy import (
    UNTRUSTED,
    AcceptUnsigned,
    AllowedSigners,
    CarriedKey,
    NoTrustAnchor,
    PinnedKey,
    SignaturePolicy,
    SignatureVerdict,
    carries_own_key,
    policy_for,
)
from kit.signing.sshsig import Unsigned, sign
from kit.signing.wire import fingerprint

ID = "alice@example.org"
MESSAGE = b'{"manifest": "the bytes that get signed"}\n'
_FLAG = re.compile(r"(^|\s)--[a-z]")  # the core names no command-line flag


class Keys:
    """Alice's and Mallory's key pairs, Alice's allowed_signers file and signatures."""

    def __init__(self, d: Path) -> None:
        self.alice_path, self.mallory_path = d / "alice", d / "mallory"
        self.allowed_path = d / "allowed_signers"
        self.allowed_path.write_text(generate_keypair(self.alice_path, comment=ID) + "\n")
        generate_keypair(self.mallory_path, comment="mallory@example.org")
        self.alice = load_private_key(self.alice_path)
        self.mallory = load_private_key(self.mallory_path)
        self.alice_fp = fingerprint(self.alice.public_key())
        self.by_alice = sign(MESSAGE, self.alice)
        self.by_mallory = sign(MESSAGE, self.mallory)
        self.entries = parse_allowed_signers(self.allowed_path.read_text())


@pytest.fixture(scope="module")
def k(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return Keys(tmp_path_factory.mktemp("keys"))


def _refused(policy: SignaturePolicy, armored: str | None, code: ExitCode, **kw: bytes) -> str:
    with pytest.raises(KitError) as e:
        policy.check(kw.get("message", MESSAGE), armored)
    assert e.value.code == code, e.value.message
    assert "\n" not in e.value.message and not _FLAG.search(e.value.message)
    return e.value.message


def _garbled(armored: str) -> str:
    return armored[: len(armored) // 2] + "\n-----END SSH SIGNATURE-----\n"


# ---------------------------------------------------------------- PinnedKey


def test_pinned_key_accepts_a_good_signature_by_its_key(k: Keys) -> None:
    verdict = PinnedKey(k.alice.public_key()).check(MESSAGE, k.by_alice)
    assert verdict.checked and verdict.signer is not None
    assert verdict.signer.fingerprint == k.alice_fp == verdict.fingerprint
    assert verdict.signer.principals == () and verdict.signer.key_type == "ssh-ed25519"
    assert verdict.reason == f"good signature by key ({k.alice_fp})"


def test_pinned_key_refusals(k: Keys) -> None:
    policy = PinnedKey(k.alice.public_key())
    assert _refused(policy, None, ExitCode.UNSIGNED) == "bundle is unsigned"
    msg = _refused(policy, k.by_mallory, ExitCode.KEY_NOT_ALLOWED)
    assert k.alice_fp in msg and fingerprint(k.mallory.public_key()) in msg
    _refused(policy, k.by_alice, ExitCode.BAD_SIGNATURE, message=MESSAGE + b" ")
    _refused(policy, _garbled(k.by_alice), ExitCode.MALFORMED_SIGNATURE)
    _refused(policy, sign(MESSAGE, k.alice, "file"), ExitCode.WRONG_NAMESPACE)


# ---------------------------------------------------------------- AllowedSigners


def test_allowed_signers_accepts_an_allowed_key(k: Keys) -> None:
    for identity in (ID, None):
        verdict = AllowedSigners(k.entries, identity).check(MESSAGE, k.by_alice)
        assert verdict.signer is not None and verdict.signer.principals == (ID,)
        assert verdict.reason == f"good signature by {ID} ({k.alice_fp})"


def test_allowed_signers_refusals(k: Keys) -> None:
    policy = AllowedSigners(k.entries, ID)
    assert _refused(policy, None, ExitCode.UNSIGNED) == "bundle is unsigned"
    assert "not in allowed_signers" in _refused(policy, k.by_mallory, ExitCode.KEY_NOT_ALLOWED)
    _refused(AllowedSigners(k.entries, "bob@example.org"), k.by_alice, ExitCode.KEY_NOT_ALLOWED)
    _refused(AllowedSigners([], None), k.by_alice, ExitCode.KEY_NOT_ALLOWED)
    _refused(policy, k.by_alice, ExitCode.BAD_SIGNATURE, message=b"other")
    _refused(policy, "hello", ExitCode.MALFORMED_SIGNATURE)
    _refused(policy, sign(MESSAGE, k.alice, "file"), ExitCode.WRONG_NAMESPACE)


# ---------------------------------------------------------------- NoTrustAnchor


def test_no_trust_anchor_refuses_unsigned_and_signed(k: Keys) -> None:
    policy = NoTrustAnchor()
    assert _refused(policy, None, ExitCode.UNSIGNED) == "bundle is unsigned"
    msg = _refused(policy, k.by_alice, ExitCode.UNSIGNED)  # README: 20, not 22
    assert msg == (
        f"signed by {k.alice_fp}, but no trust anchor (allowed signers or a public key) "
        "to check it against"
    )
    # a broken signature is reported as broken, not as merely unchecked
    _refused(policy, _garbled(k.by_alice), ExitCode.MALFORMED_SIGNATURE)


def test_unsigned_is_a_coded_signature_error() -> None:
    assert Unsigned.CODE == ExitCode.UNSIGNED and Unsigned("x").code == ExitCode.UNSIGNED


# ---------------------------------------------------------------- AcceptUnsigned


def test_accept_unsigned_alone(k: Keys) -> None:
    policy = AcceptUnsigned(None)
    unsigned = policy.check(MESSAGE, None)
    assert unsigned == SignatureVerdict(None, "bundle is unsigned (accepted, not checked)")
    assert not unsigned.checked
    signed = policy.check(MESSAGE, k.by_mallory)
    mallory_fp = fingerprint(k.mallory.public_key())
    assert signed.signer is None and signed.fingerprint == mallory_fp
    assert signed.reason == (
        f"signed by {mallory_fp}, not checked: no trust anchor (allowed signers or a public key) "
        "given"
    )
    _refused(policy, _garbled(k.by_alice), ExitCode.MALFORMED_SIGNATURE)


def test_accept_unsigned_checks_signed_bundles_with_its_inner_policy(k: Keys) -> None:
    for inner in (PinnedKey(k.alice.public_key()), AllowedSigners(k.entries, ID)):
        policy = AcceptUnsigned(inner)
        assert policy.check(MESSAGE, None).signer is None
        assert policy.check(MESSAGE, k.by_alice).signer is not None
        _refused(policy, k.by_mallory, ExitCode.KEY_NOT_ALLOWED)
        _refused(policy, k.by_alice, ExitCode.BAD_SIGNATURE, message=b"other")


def test_accept_unsigned_normalises_what_it_wraps(k: Keys) -> None:
    assert AcceptUnsigned(NoTrustAnchor()).inner is None
    pinned = PinnedKey(k.alice.public_key())
    assert AcceptUnsigned(AcceptUnsigned(pinned)).inner is pinned
    assert AcceptUnsigned(AcceptUnsigned(NoTrustAnchor())).inner is None


# ---------------------------------------------------------------- policy_for


def test_policy_for_reads_the_anchor_files(k: Keys) -> None:
    assert isinstance(policy_for(), NoTrustAnchor)
    from_file = policy_for(allowed_signers=k.allowed_path, identity=ID)
    assert isinstance(from_file, AllowedSigners) and from_file.identity == ID
    assert from_file.check(MESSAGE, k.by_alice).signer is not None
    pinned = policy_for(public_key=Path(f"{k.alice_path}.pub"))
    assert isinstance(pinned, PinnedKey)
    assert pinned.check(MESSAGE, k.by_alice).fingerprint == k.alice_fp
    wrapped = policy_for(public_key=Path(f"{k.alice_path}.pub"), accept_unsigned=True)
    assert isinstance(wrapped, AcceptUnsigned) and isinstance(wrapped.inner, PinnedKey)
    bare = policy_for(accept_unsigned=True)
    assert isinstance(bare, AcceptUnsigned) and bare.inner is None


def test_policy_for_refusals(k: Keys, tmp_path: Path) -> None:
    pub = Path(f"{k.alice_path}.pub")
    cases = [
        ({"allowed_signers": k.allowed_path, "public_key": pub}, ExitCode.USAGE),
        ({"identity": ID}, ExitCode.USAGE),
        ({"identity": ID, "public_key": pub}, ExitCode.USAGE),
        ({"allowed_signers": tmp_path / "missing"}, ExitCode.NOT_FOUND),
        ({"public_key": tmp_path / "missing.pub"}, ExitCode.NOT_FOUND),
    ]
    for kwargs, code in cases:
        with pytest.raises(KitError) as e:
            policy_for(**kwargs)  # type: ignore[arg-type]
        assert e.value.code == code, kwargs
        assert not _FLAG.search(e.value.message)
    (tmp_path / "bad").write_text("alice@example.org not-a-key\n")
    with pytest.raises(KitError) as e:
        policy_for(allowed_signers=tmp_path / "bad")
    assert e.value.code == ExitCode.USAGE and "line 1" in e.value.message


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="OpenSSH ssh-keygen not installed")
def test_policies_accept_what_ssh_keygen_signs(k: Keys, tmp_path: Path) -> None:
    data = tmp_path / "manifest.json"
    data.write_bytes(MESSAGE)
    subprocess.run(
        ["ssh-keygen", "-q", "-Y", "sign", "-f", str(k.alice_path), "-n", "repro-kit", str(data)],
        check=True,
        capture_output=True,
    )
    armored = Path(f"{data}.sig").read_text()
    assert PinnedKey(k.alice.public_key()).check(MESSAGE, armored).fingerprint == k.alice_fp
    assert AllowedSigners(k.entries, ID).check(MESSAGE, armored).signer is not None
    _refused(NoTrustAnchor(), armored, ExitCode.UNSIGNED)


def test_carried_key_accepts_any_good_signature_untrusted(k: Keys) -> None:
    """review --any-signer: good under the key it carries, named by fingerprint, not trusted."""
    verdict = CarriedKey().check(MESSAGE, k.by_mallory)
    mallory_fp = fingerprint(k.mallory.public_key())
    assert not verdict.checked and verdict.fingerprint == mallory_fp
    assert verdict.reason == f"good signature by {mallory_fp}, {UNTRUSTED}"
    _refused(CarriedKey(), k.by_mallory, ExitCode.BAD_SIGNATURE, message=b"altered")
    _refused(CarriedKey(), None, ExitCode.UNSIGNED)
    assert AcceptUnsigned(CarriedKey()).check(MESSAGE, None).fingerprint is None
    assert carries_own_key(CarriedKey()) and carries_own_key(AcceptUnsigned(CarriedKey()))
    assert not carries_own_key(AcceptUnsigned(None)) and not carries_own_key(NoTrustAnchor())
