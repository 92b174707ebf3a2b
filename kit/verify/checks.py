"""Verify a bundle: archive safety, signature, schema, integrity, scores, consistency, reference.

Each step yields a ``Check``; the report's exit code is that of the first failure, in the
order above. Nothing is extracted to disk: members are read into memory with limits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from kit.bundle import schemas
from kit.bundle.jsonread import JsonRefused, parse
from kit.bundle.manifest import (
    MANIFEST,
    MANIFEST_FORMAT,
    MANIFEST_FORMAT_VERSION,
    SIGNATURE,
    benchmark_aggregates,
    manifest_bytes,
    manifest_of,
    scored_tasks,
)
from kit.bundle.records import BundleRecords
from kit.bundle.scores import ScoreError, close
from kit.errors import ExitCode, KitError
from kit.fsio import sha256_bytes
from kit.runfolder import ENVIRONMENT, RUN
from kit.signing.policy import NoTrustAnchor, SignaturePolicy, SignatureVerdict
from kit.verify.consistency import check_consistency, within_plan
from kit.verify.reference import Reference, compare_with_reference
from kit.verify.tasklayout import TaskLayouts, default_layouts


@dataclass
class Check:
    name: str
    ok: bool | None  # None: skipped
    reason: str
    code: ExitCode = ExitCode.OK


@dataclass(frozen=True)
class SignerInfo:
    """Who signed a bundle, as far as the signature policy checked it.

    ``status``: ``verified`` (a trusted key signed it), ``not_checked`` (signed, but the policy
    accepted it without a trust anchor) or ``unsigned`` (accepted unsigned).
    """

    status: Literal["verified", "not_checked", "unsigned"]
    fingerprint: str | None = None
    principals: tuple[str, ...] = ()
    key_type: str | None = None

    @classmethod
    def of(cls, verdict: SignatureVerdict, signed: bool) -> SignerInfo:
        """The signer a policy's ``verdict`` accepted (``signed``: a signature was present)."""
        who = verdict.signer
        if who is not None:
            return cls("verified", who.fingerprint, tuple(who.principals), who.key_type)
        return cls("not_checked", verdict.fingerprint) if signed else cls("unsigned")

    def checked_json(self) -> dict[str, Any] | None:
        """The key a trust anchor checked, as plain data (None when none was checked)."""
        if self.status != "verified":
            return None
        return {
            "principals": list(self.principals),
            "key_type": self.key_type,
            "fingerprint": self.fingerprint,
        }


@dataclass
class VerifyReport:
    """Every check in order with its reason and code, and what the signature check found.

    ``signer`` is set once the signature policy accepted; ``signed`` says whether the bundle
    carries a signature (checked or not); ``reference`` is the reference comparison, if asked.
    What was verified (the records, the task scores) is handed on in a ``VerifiedBundle``.
    """

    bundle: str
    checks: list[Check] = field(default_factory=list)
    signer: SignerInfo | None = None
    reference: dict[str, Any] | None = None
    signed: bool = False
    recompute: list[dict[str, Any]] | None = None  # verify --recompute: one row per task

    @property
    def exit_code(self) -> ExitCode:
        for c in self.checks:
            if c.ok is False:
                return c.code
        return ExitCode.OK

    @property
    def ok(self) -> bool:
        """Whether no check failed (skipped ones do not count)."""
        return self.exit_code == ExitCode.OK

    def first_failure(self) -> Check:
        """The first failing check (call only when not ``ok``)."""
        return next(c for c in self.checks if c.ok is False)

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
            "signer": None if self.signer is None else self.signer.checked_json(),
            "reference": self.reference,
            **({"recompute": self.recompute} if self.recompute is not None else {}),
        }


@dataclass(frozen=True)
class Passed:
    """What every check passed on: the parsed records and the task scores recomputed from them."""

    records: BundleRecords
    tasks: dict[str, Any]


def verify_members(
    label: str,
    members: dict[str, bytes],
    *,
    signature: SignaturePolicy | None = None,
    reference: Reference | None = None,
    tolerance: float = 0.001,
    mean_tolerance: float = 0.005,
    allow_partial: bool = False,
    layouts: TaskLayouts | None = None,
) -> tuple[VerifyReport, Passed | None]:
    """Run every check after the archive step on a bundle's ``members``, in the fixed order.

    Returns the report (its first failure decides the exit code) and, when no check failed,
    the records every check read (each member parsed once) with the task scores recomputed
    from mteb's raw files. ``label`` names the bundle in the report; a partial bundle fails
    (PARTIAL) unless ``allow_partial``; ``layouts`` says what mteb evaluates per task
    (default: the installed mteb's, cached).
    """
    report = VerifyReport(label)
    report.add("archive", True, f"{len(members)} members, safe")
    if not _check_signature(report, members, signature or NoTrustAnchor()):
        return report, None
    manifest = _check_schema(report, members)
    if manifest is None:
        return report, None
    digests = _check_integrity(report, members, manifest)
    if digests is None:
        return report, None
    records = BundleRecords(members, manifest)
    if not _check_records(report, records):
        return report, None
    run, env = records.run, records.environment
    tasks = _check_scores(report, records, run)
    if tasks is None:
        return report, None
    problems, summary = check_consistency(run, records, tasks, layouts or default_layouts())
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        report.add("consistency", False, problems[0] + more, ExitCode.INCONSISTENT)
        return report, None
    report.add("consistency", True, summary)
    within = within_plan(run, records.members)
    if within is not None:  # a within-task shard's index, or a merge's plan
        problems, summary = within
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        if problems:
            report.add("within plan", False, problems[0] + more, ExitCode.SHARDS)
            return report, None
        report.add("within plan", True, summary)
    if not _check_summary(report, manifest, run, env, tasks, digests):
        return report, None
    _check_complete(report, manifest, allow_partial)
    if reference is not None:
        ref = reference.resolved(manifest["model"]["name"])
        _check_reference(report, tasks, ref, tolerance, mean_tolerance)
    return report, (Passed(records, tasks) if report.ok else None)


def _check_signature(
    report: VerifyReport, members: dict[str, bytes], policy: SignaturePolicy
) -> bool:
    """Apply ``policy`` to manifest.json and its signature; record who signed."""
    if MANIFEST not in members:
        return report.add("signature", False, "no manifest.json in bundle", ExitCode.SCHEMA)
    sig = members.get(SIGNATURE)
    report.signed = sig is not None
    try:
        armored = None if sig is None else sig.decode("ascii")
    except UnicodeDecodeError:
        return report.add(
            "signature", False, "manifest.json.sig is not ASCII armor", ExitCode.MALFORMED_SIGNATURE
        )
    try:
        verdict = policy.check(members[MANIFEST], armored)
    except KitError as e:
        return report.add("signature", False, e.message, e.code)
    report.signer = SignerInfo.of(verdict, report.signed)
    return report.add("signature", None if verdict.signer is None else True, verdict.reason)


def _check_schema(report: VerifyReport, members: dict[str, bytes]) -> dict[str, Any] | None:
    try:
        manifest = parse(members[MANIFEST])
    except JsonRefused as e:
        report.add("schema", False, f"manifest.json: {e}", ExitCode.SCHEMA)
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


def _check_records(report: VerifyReport, records: BundleRecords) -> bool:
    """run.json and environment.json against their schemas (after integrity: trusted bytes)."""
    problems = []
    for name, member in (("run", RUN), ("environment", ENVIRONMENT)):
        try:
            data = records.json(member)
        except KeyError:
            problems.append(f"{name}.json missing")
            continue
        except JsonRefused as e:
            problems.append(f"{name}.json: {e}")
            continue
        problems += [f"{name}.json {p}" for p in schemas.errors(name, data)]
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        return report.add("records", False, problems[0] + more, ExitCode.SCHEMA)
    return report.add("records", True, "run.json and environment.json match their schemas (v1)")


def _check_integrity(
    report: VerifyReport, members: dict[str, bytes], manifest: dict[str, Any]
) -> dict[str, dict[str, Any]] | None:
    """Every listed file present with its size and sha256, nothing unlisted; the digests."""
    listed = manifest["files"]
    problems = []
    digests = {}
    for name, meta in sorted(listed.items()):
        data = members.get(name)
        if data is None:
            problems.append(f"{name} missing")
            continue
        digests[name] = {"sha256": sha256_bytes(data), "size": len(data)}
        if len(data) != meta["size"] or digests[name]["sha256"] != meta["sha256"]:
            problems.append(f"{name} altered (sha256 differs)")
    extra = sorted(set(members) - set(listed) - {MANIFEST, SIGNATURE})
    problems += [f"{name} not listed in the manifest" for name in extra]
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        report.add("integrity", False, problems[0] + more, ExitCode.INTEGRITY)
        return None
    report.add("integrity", True, f"{len(listed)} files match their sha256")
    return digests


def _check_scores(
    report: VerifyReport, records: BundleRecords, run: dict[str, Any]
) -> dict[str, Any] | None:
    manifest = records.manifest
    try:
        tasks = scored_tasks(run, lambda name: records.json(name, allow_nan=True))
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
    if not agg["n_tasks"]:  # a within-task shard that only mapped split tasks
        report.add("aggregates", True, "no scored task (split tasks are scored by the merge)")
        return tasks
    report.add(
        "aggregates",
        True,
        f"mean over {agg['n_tasks']} tasks {agg['mean_task']:.6f}, "
        f"over {len(agg['mean_per_type'])} task types {agg['mean_type']:.6f}",
    )
    return tasks


def _check_summary(
    report: VerifyReport,
    manifest: dict[str, Any],
    run: dict[str, Any],
    env: dict[str, Any],
    tasks: dict[str, Any],
    files: dict[str, dict[str, Any]],
) -> bool:
    """Every other claim of the manifest must equal what the records say (rebuilt here).

    ``tasks`` are the scores step's (recomputed from the raw files), ``files`` the integrity
    step's digests of every member but the manifest and its signature.
    """
    rebuilt = manifest_of(run, env, tasks, files)
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


def _check_complete(report: VerifyReport, manifest: dict[str, Any], allow_partial: bool) -> bool:
    """A partial bundle (a task or the run not complete) fails unless partial ones are allowed."""
    partial = manifest.get("partial")
    if partial is None:
        n = len(manifest["tasks"])
        mapped = len(manifest["tasks_requested"]) - n  # a within-task shard's split tasks
        return report.add(
            "complete", True, f"all {n} tasks complete" + (f", {mapped} mapped" if mapped else "")
        )
    left = ", ".join(f"{t['name']} {t['status']}" for t in partial["tasks"]) or "no task"
    what = (
        f"partial bundle: run {partial['status']}; {left}; "
        f"{len(manifest['tasks'])} of {len(manifest['tasks_requested'])} tasks complete"
    )
    if allow_partial:
        return report.add("complete", True, f"{what} (partial allowed)")
    return report.add("complete", False, what, ExitCode.PARTIAL)


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
