"""Verify a bundle: archive safety, signature, schema, integrity, scores, reference.

Each step yields a ``Check``; the report's exit code is that of the first failure, in the
order above. Nothing is extracted to disk: members are read into memory with limits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit import schemas
from kit.archive import read_bundle_archive
from kit.errors import ExitCode, KitError
from kit.fsio import sha256_bytes
from kit.manifest import (
    MANIFEST,
    MANIFEST_FORMAT,
    MANIFEST_FORMAT_VERSION,
    SIGNATURE,
    benchmark_aggregates,
    build_manifest,
    manifest_bytes,
    task_entries,
)
from kit.reference import Reference, compare_with_reference
from kit.scores import ScoreError, close


@dataclass
class Check:
    name: str
    ok: bool | None  # None: skipped
    reason: str
    code: ExitCode = ExitCode.OK


@dataclass
class SignaturePolicy:
    """Who may have signed. With no trust anchor a bundle counts as unverified."""

    allowed_signers: Path | None = None
    identity: str | None = None
    public_key: Path | None = None
    allow_unsigned: bool = False

    @classmethod
    def from_options(
        cls,
        allowed_signers: Path | None,
        identity: str | None,
        public_key: Path | None,
        allow_unsigned: bool = False,
    ) -> SignaturePolicy:
        """The policy the CLI's trust options ask for, refusing contradictory or missing ones."""
        if allowed_signers and public_key:
            raise KitError("give --allowed-signers or --public-key, not both", ExitCode.USAGE)
        if identity and not allowed_signers:
            raise KitError("--identity needs --allowed-signers", ExitCode.USAGE)
        for p in (allowed_signers, public_key):
            if p is not None and not p.is_file():
                raise KitError(f"{p} not found", ExitCode.NOT_FOUND)
        return cls(allowed_signers, identity, public_key, allow_unsigned)


@dataclass
class VerifyReport:
    bundle: str
    checks: list[Check] = field(default_factory=list)
    manifest: dict[str, Any] | None = None
    signer: dict[str, Any] | None = None
    reference: dict[str, Any] | None = None

    @property
    def exit_code(self) -> ExitCode:
        for c in self.checks:
            if c.ok is False:
                return c.code
        return ExitCode.OK

    @property
    def ok(self) -> bool:
        return self.exit_code == ExitCode.OK

    def add(self, name: str, ok: bool | None, reason: str, code: ExitCode = ExitCode.OK) -> bool:
        self.checks.append(Check(name, ok, reason, code if ok is False else ExitCode.OK))
        return ok is not False

    def to_json(self) -> dict[str, Any]:
        return {
            "bundle": self.bundle,
            "ok": self.ok,
            "exit_code": int(self.exit_code),
            "checks": [
                {"name": c.name, "ok": c.ok, "reason": c.reason, "code": int(c.code)}
                for c in self.checks
            ],
            "signer": self.signer,
            "reference": self.reference,
        }


def verify_bundle(
    path: Path,
    *,
    signature: SignaturePolicy | None = None,
    reference: Reference | None = None,
    tolerance: float = 0.001,
    mean_tolerance: float = 0.005,
) -> VerifyReport:
    report = VerifyReport(str(path))
    try:
        members = read_bundle_archive(Path(path))
    except KitError as e:
        report.add("archive", False, e.message, e.code)
        return report
    report.add("archive", True, f"{len(members)} members, safe")
    if not _check_signature(report, members, signature or SignaturePolicy()):
        return report
    manifest = _check_schema(report, members)
    if manifest is None:
        return report
    report.manifest = manifest
    if not _check_integrity(report, members, manifest):
        return report
    if not _check_records(report, members):
        return report
    tasks = _check_scores(report, members, manifest)
    if tasks is not None:
        _check_summary(report, members, manifest)
    if reference is not None and tasks is not None:
        _check_reference(report, tasks, reference, tolerance, mean_tolerance)
    return report


def load_members(path: Path) -> dict[str, bytes]:
    return read_bundle_archive(Path(path))


def _check_signature(
    report: VerifyReport, members: dict[str, bytes], policy: SignaturePolicy
) -> bool:
    if MANIFEST not in members:
        return report.add("signature", False, "no manifest.json in bundle", ExitCode.SCHEMA)
    sig = members.get(SIGNATURE)
    if sig is None:
        if policy.allow_unsigned:
            return report.add("signature", None, "unsigned (allowed by --allow-unsigned)")
        return report.add(
            "signature",
            False,
            "bundle is unsigned (pass --allow-unsigned to check it anyway)",
            ExitCode.UNSIGNED,
        )
    from kit import sshsig

    try:
        armored = sig.decode("ascii")
    except UnicodeDecodeError:
        return report.add(
            "signature", False, "manifest.json.sig is not ASCII armor", ExitCode.MALFORMED_SIGNATURE
        )
    try:
        if policy.allowed_signers is None and policy.public_key is None:
            parsed = sshsig.parse_signature(armored)
            if policy.allow_unsigned:
                return report.add(
                    "signature",
                    None,
                    f"signed by {parsed.fingerprint}, not "
                    "checked: no --allowed-signers or --public-key given",
                )
            return report.add(
                "signature",
                False,
                f"signed by {parsed.fingerprint}, but no "
                "--allowed-signers or --public-key to check it against",
                ExitCode.KEY_NOT_ALLOWED,
            )
        if policy.allowed_signers is not None:
            signer = sshsig.verify(
                members[MANIFEST],
                armored,
                allowed_signers=sshsig.load_allowed_signers(policy.allowed_signers),
                identity=policy.identity,
            )
        else:
            signer = sshsig.verify(
                members[MANIFEST], armored, public_key=sshsig.load_public_key(policy.public_key)
            )
    except KitError as e:
        return report.add("signature", False, e.message, e.code)
    report.signer = _signer_dict(signer)
    who = ", ".join(report.signer.get("principals") or []) or "key"
    return report.add(
        "signature", True, f"good signature by {who} ({report.signer['fingerprint']})"
    )


def _signer_dict(signer: Any) -> dict[str, Any]:
    out = {}
    for key in ("principals", "principal", "key_type", "fingerprint"):
        if hasattr(signer, key):
            value = getattr(signer, key)
            out[key] = list(value) if isinstance(value, list | tuple) else value
    if "principals" not in out and out.get("principal"):
        out["principals"] = [out["principal"]]
    return out


def _check_schema(report: VerifyReport, members: dict[str, bytes]) -> dict[str, Any] | None:
    try:
        manifest = json.loads(members[MANIFEST])
    except (ValueError, UnicodeDecodeError) as e:
        report.add("schema", False, f"manifest.json is not valid JSON ({e})", ExitCode.SCHEMA)
        return None
    if not isinstance(manifest, dict):
        report.add("schema", False, "manifest.json is not a JSON object", ExitCode.SCHEMA)
        return None
    fmt, ver = manifest.get("format"), manifest.get("format_version")
    if fmt != MANIFEST_FORMAT or ver != MANIFEST_FORMAT_VERSION:
        report.add(
            "schema",
            False,
            f"unsupported bundle format {fmt!r} version {ver!r} (this "
            f"kit reads {MANIFEST_FORMAT} version {MANIFEST_FORMAT_VERSION})",
            ExitCode.SCHEMA,
        )
        return None
    problems = schemas.errors("manifest", manifest)
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        report.add("schema", False, f"manifest.json {problems[0]}{more}", ExitCode.SCHEMA)
        return None
    if manifest_bytes(manifest) != members[MANIFEST]:
        report.add(
            "schema",
            False,
            "manifest.json is not in canonical form (edited by hand?)",
            ExitCode.SCHEMA,
        )
        return None
    report.add("schema", True, "manifest matches its schema (v1), canonical form")
    return manifest


def _check_records(report: VerifyReport, members: dict[str, bytes]) -> bool:
    """run.json and environment.json against their schemas (after integrity: trusted bytes)."""
    problems = []
    for name in ("run", "environment"):
        try:
            data = json.loads(members[f"{name}.json"])
        except KeyError:
            problems.append(f"{name}.json missing")
            continue
        except (ValueError, UnicodeDecodeError):
            problems.append(f"{name}.json is not valid JSON")
            continue
        problems += [f"{name}.json {p}" for p in schemas.errors(name, data)]
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        return report.add("records", False, problems[0] + more, ExitCode.SCHEMA)
    return report.add("records", True, "run.json and environment.json match their schemas (v1)")


def _check_integrity(
    report: VerifyReport, members: dict[str, bytes], manifest: dict[str, Any]
) -> bool:
    listed = manifest["files"]
    problems = []
    for name, meta in sorted(listed.items()):
        data = members.get(name)
        if data is None:
            problems.append(f"{name} missing")
        elif len(data) != meta["size"] or sha256_bytes(data) != meta["sha256"]:
            problems.append(f"{name} altered (sha256 differs)")
    extra = sorted(set(members) - set(listed) - {MANIFEST, SIGNATURE})
    problems += [f"{name} not listed in the manifest" for name in extra]
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        return report.add("integrity", False, problems[0] + more, ExitCode.INTEGRITY)
    return report.add("integrity", True, f"{len(listed)} files match their sha256")


def _check_scores(
    report: VerifyReport, members: dict[str, bytes], manifest: dict[str, Any]
) -> dict[str, Any] | None:
    try:
        run = json.loads(members["run.json"])
        tasks = task_entries(run, members)
    except (ScoreError, KeyError, ValueError) as e:
        report.add("scores", False, f"cannot recompute scores: {e}", ExitCode.SCORES)
        return None
    claimed = manifest["tasks"]
    problems = []
    for name in sorted(set(claimed) | set(tasks)):
        if name not in tasks:
            problems.append(f"{name} in manifest but not in run.json")
        elif name not in claimed:
            problems.append(f"{name} in run.json but not in manifest")
        elif not close(claimed[name]["main_score"], tasks[name]["main_score"]):
            problems.append(
                f"{name}: manifest says {claimed[name]['main_score']:.6f}, raw "
                f"results give {tasks[name]['main_score']:.6f}"
            )
        elif [(e["split"], e["subset"], e["main_score"]) for e in claimed[name]["entries"]] != [
            (e["split"], e["subset"], e["main_score"]) for e in tasks[name]["entries"]
        ]:
            problems.append(f"{name}: per split/subset scores differ from the raw results")
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        report.add("scores", False, problems[0] + more, ExitCode.SCORES)
        return None
    report.add("scores", True, f"{len(tasks)} task scores recomputed from mteb's raw files")
    agg = benchmark_aggregates(tasks, run)
    claimed_agg = manifest["aggregates"]
    same = (
        agg["n_tasks"] == claimed_agg["n_tasks"]
        and close(agg["mean_task"], claimed_agg["mean_task"])
        and close(agg["mean_type"], claimed_agg["mean_type"])
        and set(agg["mean_per_type"]) == set(claimed_agg["mean_per_type"])
        and all(close(v, claimed_agg["mean_per_type"][k]) for k, v in agg["mean_per_type"].items())
    )
    if not same:
        report.add(
            "aggregates",
            False,
            "benchmark means in the manifest differ from those recomputed",
            ExitCode.SCORES,
        )
        return None
    report.add(
        "aggregates",
        True,
        f"mean over {agg['n_tasks']} tasks {agg['mean_task']:.6f}, "
        f"over {len(agg['mean_per_type'])} task types {agg['mean_type']:.6f}",
    )
    return tasks


def _check_summary(
    report: VerifyReport, members: dict[str, bytes], manifest: dict[str, Any]
) -> bool:
    """Every other claim of the manifest must equal what the records say (rebuilt here)."""
    files = {n: d for n, d in members.items() if n not in (MANIFEST, SIGNATURE)}
    run, env = json.loads(files["run.json"]), json.loads(files["environment.json"])
    rebuilt = build_manifest(run, env, files)
    rebuilt["kit_version"] = manifest["kit_version"]
    differing = sorted(k for k in set(rebuilt) | set(manifest) if rebuilt.get(k) != manifest.get(k))
    if differing:
        return report.add(
            "summary",
            False,
            f"manifest '{differing[0]}' does not match run.json/environment.json",
            ExitCode.INTEGRITY,
        )
    return report.add("summary", True, "model, environment and task summaries match the records")


def _check_reference(
    report: VerifyReport,
    tasks: dict[str, Any],
    ref: Reference,
    tolerance: float,
    mean_tolerance: float,
) -> None:
    cmp = compare_with_reference(tasks, ref, tolerance, mean_tolerance)
    report.reference = cmp
    failed = [r for r in cmp["tasks"] if r["ok"] is False]
    missing = [r["task"] for r in cmp["tasks"] if r["ok"] is None]
    compared = [r for r in cmp["tasks"] if r["ok"] is not None]
    if not compared:
        report.add(
            "reference", False, f"no task of the bundle is in {ref.source}", ExitCode.REFERENCE
        )
        return
    note = f"; no reference for {', '.join(missing)}" if missing else ""
    if failed:
        worst = max(failed, key=lambda r: abs(r["delta"]))
        report.add(
            "reference",
            False,
            f"{len(failed)} of {len(compared)} tasks beyond "
            f"{tolerance:g}: {worst['task']} delta {worst['delta']:+.6f}{note}",
            ExitCode.REFERENCE,
        )
    else:
        report.add("reference", True, f"{len(compared)} tasks within {tolerance:g}{note}")
    bad_means = [m for m in cmp["means"] if not m["ok"]]
    if bad_means:
        m = bad_means[0]
        report.add(
            "reference means",
            False,
            f"{m['mean']} delta {m['delta']:+.6f} beyond {mean_tolerance:g}",
            ExitCode.REFERENCE,
        )
    else:
        report.add(
            "reference means",
            True,
            ", ".join(f"{m['mean']} delta {m['delta']:+.6f}" for m in cmp["means"]) + f" (within "
            f"{mean_tolerance:g})",
        )
