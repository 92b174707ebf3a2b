"""Read a bundle file once, verify it, and hand on what was verified.

``check_bundle`` is the one way into a bundle: it reads the file's bytes once, hashes them,
parses the archive from those bytes and runs every check. ``verify`` prints its report;
``require_verified`` gives sign, report, export, merge, compare and re-run a ``VerifiedBundle``
(or raises the first failing check's code), so nothing re-reads the file after it was checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.bundle.archive import parse_bundle_archive, read_bundle_file
from kit.bundle.records import BundleRecords
from kit.errors import ExitCode, KitError
from kit.fsio import sha256_bytes
from kit.runfolder import is_run_folder
from kit.verify.checks import SignaturePolicy, SignerInfo, VerifyReport, verify_members
from kit.verify.reference import Reference


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle that passed every check: its bytes' digest, its records and its task scores.

    ``records`` holds the read-only members and every record parsed once (the manifest,
    run.json, environment.json, the result files); ``tasks`` the task scores recomputed from
    mteb's raw files; ``report`` is the passing verify report (its checks and signer).
    """

    path: Path
    sha256: str
    size: int
    records: BundleRecords
    tasks: dict[str, Any]
    report: VerifyReport

    @property
    def members(self) -> Mapping[str, bytes]:
        """The bundle's members by name (read-only)."""
        return self.records.members

    @property
    def manifest(self) -> dict[str, Any]:
        return self.records.manifest

    @property
    def run(self) -> dict[str, Any]:
        """run.json, as verified."""
        run: dict[str, Any] = self.records.run
        return run

    @property
    def environment(self) -> dict[str, Any]:
        """environment.json, as verified."""
        env: dict[str, Any] = self.records.environment
        return env

    @property
    def signer(self) -> SignerInfo:
        """Who signed, as far as the signature policy checked it."""
        assert self.report.signer is not None  # the signature check passed
        return self.report.signer

    @property
    def partial(self) -> dict[str, Any] | None:
        """The manifest's partial marking (tasks not complete), None for a complete bundle."""
        return self.manifest.get("partial")


def refuse_run_folder(path: Path) -> None:
    """A run folder given where a bundle belongs: USAGE, naming the command that bundles it."""
    if is_run_folder(Path(path)):
        raise KitError(
            f"{path} is a run folder: bundle it first (repro-kit bundle {path})", ExitCode.USAGE
        )


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
    partial bundle fails (PARTIAL) unless ``allow_partial``; a run folder is refused (USAGE).
    """
    path = Path(path)
    refuse_run_folder(path)
    try:
        data = read_bundle_file(path)
        members = parse_bundle_archive(data)
    except KitError as e:
        report = VerifyReport(str(path))
        report.add("archive", False, e.message, e.code)
        return report, None
    report, passed = verify_members(
        str(path),
        members,
        signature=signature,
        reference=reference,
        tolerance=tolerance,
        mean_tolerance=mean_tolerance,
        allow_partial=allow_partial,
    )
    if passed is None:
        return report, None
    verified = VerifiedBundle(
        path=path,
        sha256=sha256_bytes(data),
        size=len(data),
        records=passed.records,
        tasks=passed.tasks,
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
