"""Signature policies: who may have signed a bundle's manifest, as objects that do the check.

A policy's ``check(message, armored)`` takes the signed bytes and the armored signature (None
when there is none) and either returns a ``SignatureVerdict`` or raises the refusal as a
KitError subclass carrying its exit code:

- ``PinnedKey(public_key)``: a good signature by exactly that key;
- ``AllowedSigners(entries, identity)``: a good signature by a key an allowed_signers file
  allows (for ``identity``, when given);
- ``NoTrustAnchor()``: nothing to check against, so refuse (UNSIGNED);
- ``AcceptUnsigned(inner)``: the explicit, insecure choice: accept an unsigned bundle, and
  a signed one as "not checked" unless ``inner`` can check it;
- ``OwnSignature()``: for the kit checking what it just wrote: unsigned is accepted, and a
  signature must be good under the key it carries (integrity only: it trusts no one);
- ``CarriedKey()``: for a reviewer with no allowed signers (``review --any-signer``): unsigned
  is refused, a signature must be good under the key it carries, and the verdict names that key
  as untrusted (``signer`` None: nobody vouched for it).

Reasons never name a command-line flag; the CLI adds its own hints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from kit.errors import ExitCode, KitError

if TYPE_CHECKING:  # the crypto modules load only when a signature is checked (fast start)
    from kit.signing.allowed_signers import AllowedSigner
    from kit.signing.sshsig import VerifiedSigner
    from kit.signing.wire import PublicKey

UNSIGNED_REASON = "bundle is unsigned"
NO_ANCHOR = "no trust anchor (allowed signers or a public key)"


@dataclass(frozen=True)
class SignatureVerdict:
    """A policy's acceptance: who signed (None: not checked) and one line saying so."""

    signer: VerifiedSigner | None
    reason: str
    fingerprint: str | None = None  # of the signing key, when signed (checked or not)

    @property
    def checked(self) -> bool:
        """Whether a signature was checked against a trust anchor (and was good)."""
        return self.signer is not None


class SignaturePolicy(Protocol):
    """Decides whether ``armored`` (None: unsigned) is an acceptable signature of ``message``."""

    def check(self, message: bytes, armored: str | None) -> SignatureVerdict:
        """The verdict on an accepted signature; raise a KitError (with its code) otherwise."""
        ...


def _unsigned() -> KitError:
    from kit.signing.sshsig import Unsigned

    return Unsigned(UNSIGNED_REASON)


def _good(signer: VerifiedSigner) -> SignatureVerdict:
    who = ", ".join(signer.principals) or "key"
    return SignatureVerdict(
        signer, f"good signature by {who} ({signer.fingerprint})", signer.fingerprint
    )


@dataclass(frozen=True)
class PinnedKey:
    """Accept only a good signature by ``public_key``."""

    public_key: PublicKey

    def check(self, message: bytes, armored: str | None) -> SignatureVerdict:
        """Refuse unsigned (UNSIGNED) and any signature not good under the pinned key."""
        if armored is None:
            raise _unsigned()
        from kit.signing.sshsig import verify

        return _good(verify(message, armored, public_key=self.public_key))


@dataclass(frozen=True)
class AllowedSigners:
    """Accept a good signature by a key that ``entries`` allow (for ``identity``, if given)."""

    entries: Sequence[AllowedSigner]
    identity: str | None = None

    def check(self, message: bytes, armored: str | None) -> SignatureVerdict:
        """Refuse unsigned (UNSIGNED) and any signature not good by an allowed key."""
        if armored is None:
            raise _unsigned()
        from kit.signing.sshsig import verify

        entries = list(self.entries)
        return _good(verify(message, armored, allowed_signers=entries, identity=self.identity))


@dataclass(frozen=True)
class NoTrustAnchor:
    """No key to check against: refuse unsigned and signed bundles alike (UNSIGNED)."""

    def check(self, message: bytes, armored: str | None) -> SignatureVerdict:
        """Always raises; a malformed signature is reported as such first."""
        if armored is None:
            raise _unsigned()
        from kit.signing.sshsig import Unsigned, parse_signature

        sig = parse_signature(armored)
        # README: "unsigned (or signed, but no trust anchor given)" is UNSIGNED
        raise Unsigned(f"signed by {sig.fingerprint}, but {NO_ANCHOR} to check it against")


@dataclass(frozen=True)
class AcceptUnsigned:
    """Accept an unsigned bundle; check a signed one with ``inner``, or accept it unchecked.

    ``AcceptUnsigned(NoTrustAnchor())`` is ``AcceptUnsigned(None)``, and wrapping an
    ``AcceptUnsigned`` again changes nothing.
    """

    inner: SignaturePolicy | None = None

    def __post_init__(self) -> None:
        inner = self.inner
        while isinstance(inner, AcceptUnsigned):
            inner = inner.inner
        if isinstance(inner, NoTrustAnchor):
            inner = None
        object.__setattr__(self, "inner", inner)

    def check(self, message: bytes, armored: str | None) -> SignatureVerdict:
        """Unsigned: accepted, not checked. Signed: ``inner.check``, or not checked."""
        if armored is None:
            return SignatureVerdict(None, f"{UNSIGNED_REASON} (accepted, not checked)")
        if self.inner is not None:
            return self.inner.check(message, armored)
        from kit.signing.sshsig import parse_signature

        sig = parse_signature(armored)
        return SignatureVerdict(
            None, f"signed by {sig.fingerprint}, not checked: {NO_ANCHOR} given", sig.fingerprint
        )


def policy_for(
    *,
    allowed_signers: Path | None = None,
    identity: str | None = None,
    public_key: Path | None = None,
    accept_unsigned: bool = False,
) -> SignaturePolicy:
    """The policy for these trust anchor files, read now (their KitErrors propagate).

    At most one of ``allowed_signers`` and ``public_key``; ``identity`` needs
    ``allowed_signers``; neither gives ``NoTrustAnchor``. ``accept_unsigned`` wraps the
    result in ``AcceptUnsigned``.
    """
    if allowed_signers is not None and public_key is not None:
        raise KitError("give allowed signers or a public key, not both", ExitCode.USAGE)
    if identity is not None and allowed_signers is None:
        raise KitError("an identity needs allowed signers", ExitCode.USAGE)
    policy: SignaturePolicy
    if allowed_signers is not None:
        from kit.signing.allowed_signers import load_allowed_signers

        policy = AllowedSigners(load_allowed_signers(allowed_signers), identity)
    elif public_key is not None:
        from kit.signing.allowed_signers import load_public_key

        policy = PinnedKey(load_public_key(public_key))
    else:
        policy = NoTrustAnchor()
    return AcceptUnsigned(policy) if accept_unsigned else policy


@dataclass(frozen=True)
class OwnSignature:
    """Accept unsigned, or a signature good under its own key (the kit's check of its output)."""

    def check(self, message: bytes, armored: str | None) -> SignatureVerdict:
        """Unsigned: accepted, not checked. Signed: verified under the key it names."""
        if armored is None:
            return SignatureVerdict(None, UNSIGNED_REASON)
        from kit.signing.sshsig import parse_signature, verify

        key = parse_signature(armored).public_key
        return _good(verify(message, armored, public_key=key))


UNTRUSTED = "untrusted (no allowed-signers)"


@dataclass(frozen=True)
class CarriedKey:
    """Accept a signature good under the key it carries, vouching for no one (``UNTRUSTED``)."""

    def check(self, message: bytes, armored: str | None) -> SignatureVerdict:
        """Unsigned: refused (UNSIGNED). Signed: verified under its own key, shown untrusted."""
        if armored is None:
            raise _unsigned()
        from kit.signing.sshsig import parse_signature, verify

        key = parse_signature(armored).public_key
        who = verify(message, armored, public_key=key)
        return SignatureVerdict(
            None, f"good signature by {who.fingerprint}, {UNTRUSTED}", who.fingerprint
        )


def carries_own_key(policy: SignaturePolicy) -> bool:
    """Whether ``policy`` checks signatures against the key they carry (``CarriedKey``)."""
    inner = policy.inner if isinstance(policy, AcceptUnsigned) else policy
    return isinstance(inner, CarriedKey)
