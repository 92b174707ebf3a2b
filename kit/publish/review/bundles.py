"""The bundles a review is given: each fetched (a URL) and verified once, refusals kept.

A refused bundle does not stop the review: its files are shown as unbacked and the review ends
with the bundle's code (verify's, 3 for a missing file, 34 for a failed download), so the
maintainer sees the whole pull request either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.bundle.download import fetch, parse_source
from kit.errors import ExitCode, KitError
from kit.signing.policy import UNTRUSTED, SignaturePolicy, carries_own_key
from kit.verify.verified import VerifiedBundle, check_bundle


@dataclass(frozen=True)
class ReviewedBundle:
    """One ``--bundle`` value: verified (``verified``), or refused (``code``, ``reason``)."""

    number: int  # 1-based, in the order given
    source: str
    verified: VerifiedBundle | None = None
    code: ExitCode = ExitCode.OK
    reason: str = ""
    untrusted: bool = False  # a signature good under its own key, no allowed signers

    @property
    def ok(self) -> bool:
        return self.verified is not None

    def signer(self) -> str:
        """Who signed, as one line: principals and fingerprint, untrusted, or unsigned."""
        if self.verified is None:
            return "not verified"
        who = self.verified.signer
        if who.status == "verified":
            names = ", ".join(who.principals) or "key"
            return f"{names}, {who.fingerprint}"
        if who.status == "not_checked" and self.untrusted:
            return f"{who.fingerprint} {UNTRUSTED}"
        if who.status == "not_checked":
            return f"{who.fingerprint} (not checked: no trust anchor given)"
        return "unsigned"

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"number": self.number, "source": self.source, "verified": self.ok}
        if self.verified is None:
            return out | {"exit_code": int(self.code), "reason": self.reason}
        v, who = self.verified, self.verified.signer
        return out | {
            "sha256": v.sha256,
            "model": v.manifest["model"]["name"],
            "revision": v.manifest["model"]["revision"],
            "tasks": sorted(v.manifest["tasks"]),
            "benchmark": v.manifest.get("benchmark"),
            "signature": who.status,
            "signer_fingerprint": who.fingerprint,
            "signer_principals": list(who.principals),
            "signer_trusted": who.status == "verified",
            "signer": self.signer(),
        }


def _one(number: int, text: str, policy: SignaturePolicy, work: Path) -> ReviewedBundle:
    try:
        source = parse_source(text)
        path = fetch(source, work / f"bundle-{number}.tar.gz") if source.is_url else source.path
    except KitError as e:
        return ReviewedBundle(number, text, code=e.code, reason=e.message)
    assert path is not None
    try:
        report, verified = check_bundle(path, signature=policy)
    except KitError as e:  # a run folder where a bundle belongs
        return ReviewedBundle(number, text, code=e.code, reason=e.message)
    if verified is None:
        bad = report.first_failure()
        return ReviewedBundle(number, text, code=bad.code, reason=f"{bad.name}: {bad.reason}")
    return ReviewedBundle(number, text, verified, untrusted=carries_own_key(policy))


def load_bundles(sources: list[str], policy: SignaturePolicy, work: Path) -> list[ReviewedBundle]:
    """Each source fetched into ``work`` (URLs) and verified once, in the order given; a source
    given twice is read once."""
    seen: dict[str, ReviewedBundle] = {}
    for text in sources:
        if text not in seen:
            seen[text] = _one(len(seen) + 1, text, policy, work)
    return list(seen.values())
