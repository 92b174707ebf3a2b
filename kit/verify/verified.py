"""Read a bundle file once, verify it, and hand on what was verified.

``check_bundle`` is the one way into a bundle: it reads the file's bytes once, hashes them,
parses the archive from those bytes and runs every check. ``verify`` prints its report;
``require_verified`` gives sign, report, export, merge, compare and re-run a ``VerifiedBundle``
(or raises the first failing check's code), so nothing re-reads the file after it was checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from kit.bundle.archive import parse_bundle_archive, read_bundle_file
from kit.errors import ExitCode, KitError
from kit.fsio import sha256_bytes
from kit.verify.checks import SignaturePolicy, VerifyReport, verify_members
from kit.verify.reference import Reference


@dataclass(frozen=True)
class SignerInfo:
    """Who signed a verified bundle, as far as the policy checked it.

    ``status``: ``verified`` (a trusted key signed it), ``not_checked`` (signed, but the policy
    accepted it without a trust anchor) or ``unsigned`` (accepted unsigned).
    """

    status: Literal["verified", "not_checked", "unsigned"]
    fingerprint: str | None = None
    principals: tuple[str, ...] = ()
    key_type: str | None = None


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle that passed every check: its bytes' digest, members and parsed records.

    ``members`` is read-only; ``tasks`` holds the task scores recomputed from mteb's raw
    files; ``report`` is the passing verify report.
    """

    path: Path
    sha256: str
    size: int
    members: MappingProxyType[str, bytes]
    manifest: dict[str, Any]
    run: dict[str, Any]
    environment: dict[str, Any]
    tasks: dict[str, Any]
    signer: SignerInfo
    report: VerifyReport

    @property
    def partial(self) -> dict[str, Any] | None:
        """The manifest's partial marking (tasks not complete), None for a complete bundle."""
        return self.manifest.get("partial")


def check_bundle(
    path: Path,
    *,
    signature: SignaturePolicy | None = None,
    reference: Reference | None = None,
    tolerance: float = 0.001,
    mean_tolerance: float = 0.005,
    allow_partial: bool = False,
) -> tuple[VerifyReport, VerifiedBundle | None]:
    """Read the bundle at ``path`` once and verify it.

    Returns the ordered report and, when every check passed, the ``VerifiedBundle``. A
    partial bundle fails (PARTIAL) unless ``allow_partial``.
    """
    path = Path(path)
    try:
        data = read_bundle_file(path)
        members = parse_bundle_archive(data)
    except KitError as e:
        report = VerifyReport(str(path))
        report.add("archive", False, e.message, e.code)
        return report, None
    report, tasks = verify_members(
        str(path),
        members,
        signature=signature,
        reference=reference,
        tolerance=tolerance,
        mean_tolerance=mean_tolerance,
        allow_partial=allow_partial,
    )
    if not report.ok or tasks is None or report.manifest is None:
        return report, None
    assert report.run is not None and report.environment is not None  # records passed
    verified = VerifiedBundle(
        path=path,
        sha256=sha256_bytes(data),
        size=len(data),
        members=MappingProxyType(members),
        manifest=report.manifest,
        run=report.run,
        environment=report.environment,
        tasks=tasks,
        signer=_signer_info(report),
        report=report,
    )
    return report, verified


def verify_bundle(
    path: Path,
    *,
    signature: SignaturePolicy | None = None,
    reference: Reference | None = None,
    tolerance: float = 0.001,
    mean_tolerance: float = 0.005,
    allow_partial: bool = False,
) -> VerifyReport:
    """The ordered verify report of the bundle at ``path`` (see ``check_bundle``)."""
    report, _ = check_bundle(
        path,
        signature=signature,
        reference=reference,
        tolerance=tolerance,
        mean_tolerance=mean_tolerance,
        allow_partial=allow_partial,
    )
    return report


def require_verified(
    path: Path, signature: SignaturePolicy | None, refusal: str, *, allow_partial: bool = False
) -> VerifiedBundle:
    """The verified bundle at ``path``, or KitError with the first failing check's code.

    ``refusal`` starts the error message, e.g. ``"refusing to export"``; a missing file is
    NOT_FOUND; a partial bundle is PARTIAL unless ``allow_partial``.
    """
    path = Path(path)
    if not path.exists():
        raise KitError(f"{path} not found", ExitCode.NOT_FOUND)
    report, verified = check_bundle(path, signature=signature, allow_partial=allow_partial)
    if verified is None:
        bad = report.first_failure()
        raise KitError(f"{refusal} {path}: {bad.name}: {bad.reason}", bad.code)
    return verified


def _signer_info(report: VerifyReport) -> SignerInfo:
    verdict = report.verdict
    if verdict is not None and verdict.signer is not None:
        who = verdict.signer
        return SignerInfo("verified", who.fingerprint, tuple(who.principals), who.key_type)
    if not report.signed:
        return SignerInfo("unsigned")
    return SignerInfo("not_checked", verdict.fingerprint if verdict else None)
