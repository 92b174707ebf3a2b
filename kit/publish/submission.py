"""The end of ``evaluate``: write the run's bundle, sign it, verify what was written.

A run is not reported as a success until its bundle passed the kit's own verify: a signed
bundle against the key inside its signature (the signature is good for the manifest that was
written), an unsigned one as unsigned. The summary names the bundle, its sha256, the signer's
fingerprint, and whether it is partial.
"""

from __future__ import annotations

import base64
import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from kit.bundle.manifest import SIGNATURE
from kit.bundle.write import Signer, write_bundle
from kit.errors import ExitCode, KitError
from kit.signing.policy import OwnSignature
from kit.verify.verified import check_bundle


@dataclass(frozen=True)
class Submission:
    """The bundle ``evaluate`` wrote and verified."""

    path: str
    sha256: str
    size: int
    signed: bool
    fingerprint: str | None
    partial: tuple[str, ...]  # tasks not complete (a partial bundle), empty when complete
    public_key: str | None = None  # the signing key as an OpenSSH line ("TYPE BASE64")


def default_bundle_path(run_dir: Path) -> Path:
    """``<run folder>.tar.gz``, beside the run folder."""
    run_dir = Path(run_dir)
    return run_dir.with_name(run_dir.name + ".tar.gz")


def write_submission(run_dir: Path, dest: Path, sign: Signer | None) -> Submission:
    """Bundle ``run_dir`` into ``dest`` (signed when ``sign``) and verify it.

    On a verify failure the bundle is removed and the first failing check's code raised:
    nothing unverified is left where the summary would point. A run with failed tasks gives
    a partial bundle (its manifest says which tasks, and why); ``Submission.partial`` names
    them.
    """
    dest = Path(dest)
    info = write_bundle(run_dir, dest, sign)
    report, verified = check_bundle(dest, signature=OwnSignature(), allow_partial=True)
    if verified is None:
        bad = report.first_failure()
        _remove(dest)
        raise KitError(f"the bundle written failed verify: {bad.name}: {bad.reason}", bad.code)
    partial = tuple(str(t.get("name")) for t in ((verified.partial or {}).get("tasks") or []))
    fingerprint = verified.signer.fingerprint
    key = signing_key_line(verified.members.get(SIGNATURE))
    return Submission(info.path, verified.sha256, info.size, info.signed, fingerprint, partial, key)


def signing_key_line(armored: bytes | None) -> str | None:
    """The key in a signature as an OpenSSH public key line ("TYPE BASE64"); None if none."""
    if armored is None:
        return None
    from kit.signing.sshsig import parse_signature

    sig = parse_signature(armored)
    return f"{sig.key_type} {base64.b64encode(sig.public_key_blob).decode()}"


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def unsigned_hint(dest: Path) -> str:
    """How to sign later what was bundled unsigned."""
    return f"sign it later: repro-kit sign {dest} --sign ~/.ssh/id_ed25519.pub"


def submit_run(
    run_dir: Path, dest: Path | None, sign: Signer | None, allow_unsigned: bool
) -> tuple[Submission, str | None]:
    """``evaluate``'s last step: the verified bundle of ``run_dir`` (default beside it).

    When signing fails (KEY_ERROR: key not in the agent, agent refused...), the run folder is
    kept and, only with ``allow_unsigned``, the bundle is written unsigned; the signing
    error is then returned for the caller to report (it exits 25 all the same).
    """
    dest = Path(dest) if dest is not None else default_bundle_path(run_dir)
    try:
        return write_submission(run_dir, dest, sign), None
    except KitError as e:
        if e.code != ExitCode.KEY_ERROR or sign is None:
            raise
        if not allow_unsigned:
            raise KitError(
                f"{e.message}; no bundle written, the run folder {run_dir} is kept: sign it "
                f"with repro-kit bundle {run_dir} -o {dest} --sign KEY",
                ExitCode.KEY_ERROR,
            ) from None
        return write_submission(run_dir, dest, None), e.message
