"""A review's verdicts: per changed file, the one-line verdict, and the exit code.

Per file: **backed** (equal to what the named bundles' export yields), **differs** (the first
differing key path and both values), **removed** (a split, subset or the file disappears) or
**unbacked** (no bundle yields it). The exit code, first match wins:

1. a bundle refused: the first refused bundle's code, in the order given (verify's 10-25, 3 a
   missing file, 2 a run folder, 34 a download, or its export's code);
2. 32 (REVIEW_DIFFERS): a changed file differs from its yield, or something was removed;
3. 33 (REVIEW_UNBACKED): a changed file no bundle yields;
4. the first failing rule's code: 35 (EXPORT_RULES) or 36 (DRIFT);
5. 0: every changed file backed, every rule passes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kit.errors import ExitCode
from kit.publish.reporules import RuleCheck
from kit.publish.review.bundles import ReviewedBundle
from kit.publish.review.compare import Comparison
from kit.publish.review.leaderboard import BoardRow
from kit.publish.review.mtebstatus import TaskStatus

VERDICTS = ("backed", "differs", "removed", "unbacked")


@dataclass(frozen=True)
class FileVerdict:
    """One changed file under results/ and what the review makes of it."""

    path: str
    change: str  # added, modified, removed
    verdict: str  # one of VERDICTS
    bundles: tuple[int, ...] = ()
    comparison: Comparison = field(default_factory=Comparison)
    reason: str = ""

    def detail(self) -> str:
        """One line: the first difference, what was removed, or why it is unbacked."""
        parts = []
        if self.comparison.removed:
            parts.append(f"removed: {', '.join(self.comparison.removed)}")
        if self.comparison.difference is not None:
            parts.append(self.comparison.difference.text())
        return "; ".join(parts) or self.reason

    def as_json(self) -> dict[str, Any]:
        diff = self.comparison.difference
        return {
            "path": self.path,
            "change": self.change,
            "verdict": self.verdict,
            "bundles": list(self.bundles),
            "difference": diff.as_json() if diff is not None else None,
            "removed": list(self.comparison.removed),
            "reason": self.reason,
            "subsets": [
                {
                    "split": r.split,
                    "subset": r.subset,
                    "pull_request": r.pr,
                    "bundle": r.bundle,
                    "status": r.status,
                }
                for r in self.comparison.rows
            ],
        }


@dataclass
class Review:
    """Everything a review found, in the order it is shown."""

    repo: str
    base: str  # the base's label (the merge-base and its ref)
    head: str
    bundles: list[ReviewedBundle]
    files: list[FileVerdict]
    rules: list[RuleCheck]
    tasks: list[TaskStatus]
    board: list[BoardRow]
    outside: int = 0  # files changed outside results/
    export_failures: dict[int, tuple[ExitCode, str]] = field(default_factory=dict)
    # per bundle's model: task -> zero-shot (True), trained on (False), unknown (None), by
    # mteb's rules over the declared training data and the adapted_from parent's
    zero_shot: dict[str, dict[str, bool | None]] = field(default_factory=dict)

    def count(self, verdict: str) -> int:
        return sum(f.verdict == verdict for f in self.files)

    def refused(self) -> list[tuple[ReviewedBundle, ExitCode, str]]:
        """Bundles that were refused or whose export failed, in the order given."""
        out = []
        for b in self.bundles:
            if not b.ok:
                out.append((b, b.code, b.reason))
            elif b.number in self.export_failures:
                code, why = self.export_failures[b.number]
                out.append((b, code, f"export into the base: {why}"))
        return out

    def failed_rules(self) -> list[RuleCheck]:
        return [r for r in self.rules if r.failed]

    def exit_code(self) -> ExitCode:
        """The documented precedence (module docstring)."""
        refused = self.refused()
        if refused:
            return refused[0][1]
        if self.count("differs") or self.count("removed"):
            return ExitCode.REVIEW_DIFFERS
        if self.count("unbacked"):
            return ExitCode.REVIEW_UNBACKED
        failed = self.failed_rules()
        return failed[0].code if failed else ExitCode.OK

    def _backers(self) -> list[ReviewedBundle]:
        used = {n for f in self.files for n in f.bundles}
        return [b for b in self.bundles if b.number in used]

    def verdict(self) -> str:
        """The one-line verdict the Markdown starts with (not escaped)."""
        n = len(self.files)
        files = f"{n} file{'s' if n != 1 else ''}"
        if not self.files:
            head = "no file under results/ changed"
        elif all(f.verdict == "backed" for f in self.files):
            head = f"{files}, all backed by {_bundles_phrase(self._backers())}"
        else:
            counts = ", ".join(f"{self.count(v)} {v}" for v in VERDICTS if self.count(v))
            first = next(f for f in self.files if f.verdict != "backed")
            diff = first.comparison.difference
            if diff is not None and not first.comparison.removed:
                head = f"{files}: {counts}; first difference: {diff.text()}"
            else:
                head = f"{files}: {counts}; first: {first.path} {first.verdict}"
                head += f" ({first.detail()})" if first.detail() else ""
        tail = []
        refused = self.refused()
        if refused:
            b, code, why = refused[0]
            tail.append(f"bundle {b.number} refused (exit {int(code)}): {why}")
        failed = self.failed_rules()
        if failed:
            tail.append(
                f"{len(failed)} rule check{'s' if len(failed) != 1 else ''} fail "
                f"(first: {failed[0].rule} on {failed[0].file}: {failed[0].reason})"
            )
        elif self.files:
            tail.append("the repository's rules pass")
        return "; ".join([head, *tail])

    def as_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict(),
            "exit_code": int(self.exit_code()),
            "repository": self.repo,
            "base": self.base,
            "head": self.head,
            "files_outside_results": self.outside,
            "bundles": [
                b.as_json()
                | (
                    {"export_failure": self.export_failures[b.number][1]}
                    if b.number in self.export_failures
                    else {}
                )
                for b in self.bundles
            ],
            "files": [f.as_json() for f in self.files],
            "counts": {v: self.count(v) for v in VERDICTS},
            "rules": [
                {
                    "rule": r.rule,
                    "file": r.file,
                    "status": r.status,
                    "reason": r.reason,
                    "exit_code": int(r.code) if r.failed else 0,
                }
                for r in self.rules
            ],
            "tasks": [t.as_json() for t in self.tasks],
            "zero_shot": self.zero_shot,
            "leaderboard": [r.as_json() for r in self.board],
        }


def _bundles_phrase(bundles: list[ReviewedBundle]) -> str:
    """``1 signed bundle (signer, fingerprint)``, or each bundle with its signer."""
    n = len(bundles)
    plural = "s" if n != 1 else ""
    statuses = {b.verified.signer.status for b in bundles if b.verified is not None}
    signers = "; ".join(dict.fromkeys(b.signer() for b in bundles))
    if statuses == {"verified"}:
        return f"{n} signed bundle{plural} ({signers})"
    if statuses == {"unsigned"}:
        return f"{n} unsigned bundle{plural}"
    if statuses == {"not_checked"} and all(b.untrusted for b in bundles):
        keys = "untrusted keys" if len(set(signers.split("; "))) > 1 else "an untrusted key"
        return f"{n} bundle{plural} signed by {keys} ({signers})"
    return f"{n} bundle{plural} ({signers})"
