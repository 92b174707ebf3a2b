"""A review as Markdown (a pull-request comment): the one-line verdict first, then tables.

Everything read from the pull request or a bundle (paths, task and model names, values,
signers, reasons) goes through ``md``: each ASCII punctuation character that could make
Markdown or HTML of it (pipes, backticks, ``<``, ``&``, ``*``, ``_``, ``[``...) is
backslash-escaped, a control or format character (newlines, bidi overrides) becomes visible
``\\uXXXX`` text, and ``@``/``#`` are followed by a word joiner so a value can neither mention
a user nor link an issue. Files that need a look come first, so a comment
cut at the forge's size limit keeps them.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from kit.publish.reporules import RuleCheck
from kit.publish.review.leaderboard import BoardRow
from kit.publish.review.verdict import FileVerdict, Review

_PLAIN = frozenset(" .,:;/=+-()%'\"")
_JOINER = "\u2060"  # WORD JOINER: "@name" and "#12" stop being a mention and an issue link


def md(value: Any) -> str:
    """``value`` as inert Markdown text (see the module docstring)."""
    out = []
    for c in str(value):
        if unicodedata.category(c).startswith("C"):
            out.append(f"\\u{ord(c):04x}")
        elif c in "@#":
            out.append(f"\\{c}{_JOINER}")
        elif c.isascii() and not c.isalnum() and c not in _PLAIN:
            out.append(f"\\{c}")
        else:
            out.append(c)
    return "".join(out)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(md(c) for c in row) + " |" for row in rows]
    return lines


def _score(value: Any) -> str:
    if value is None:
        return "-"
    return repr(value) if isinstance(value, float) else str(value)


def _bundles(review: Review) -> list[str]:
    failures = {b.number: (code, why) for b, code, why in review.refused()}
    rows = []
    for b in review.bundles:
        v = b.verified
        if b.number in failures:
            code, why = failures[b.number]
            state = f"refused (exit {int(code)}): {why}"
        else:
            state = "verified"
        model = v.manifest["model"]["name"] if v is not None else "-"
        tasks = len(v.manifest["tasks"]) if v is not None else "-"
        backs = sum(b.number in f.bundles and f.verdict == "backed" for f in review.files)
        rows.append([b.number, b.source, state, b.signer(), model, tasks, backs])
    header = ["no.", "bundle", "verify", "signer", "model", "tasks", "files it backs"]
    return ["### Bundles", "", *_table(header, rows)]


def _file(f: FileVerdict) -> list[str]:
    by = f" (bundle {', '.join(map(str, f.bundles))})" if f.bundles else ""
    lines = ["", f"#### {md(f.path)}: {md(f.verdict)}{md(by)}", ""]
    rows = f.comparison.rows
    if rows:
        header = ["split", "subset", "pull request", "bundle", "status"]
        body = [[r.split, r.subset, _score(r.pr), _score(r.bundle), r.status] for r in rows]
        lines += _table(header, body)
    else:
        lines += _table(["change", "verdict"], [[f.change, f.verdict]])
    if f.detail():
        lines += ["", md(f.detail())]
    return lines


def _rules(rules: list[RuleCheck]) -> list[str]:
    shown = [r for r in rules if r.status != "pass"]
    passed = len(rules) - len(shown)
    lines = ["", "### Repository rules", ""]
    if shown:
        lines += _table(["rule", "file", "result", "reason"],
                        [[r.rule, r.file, r.status, r.reason] for r in shown])  # fmt: skip
        lines.append("")
    lines.append(f"{passed} of {len(rules)} rule checks on the changed files pass.")
    return lines


def _tasks(review: Review) -> list[str]:
    flagged = [t for t in review.tasks if t.flagged]
    lines = ["", "### Tasks in mteb", ""]
    if flagged:
        lines += _table(["task", "mteb says"], [[t.task, t.text()] for t in flagged])
        lines.append("")
    current = len(review.tasks) - len(flagged)
    lines.append(f"{current} of {len(review.tasks)} tasks are current (not superseded, not beta).")
    for model, tasks in review.zero_shot.items():
        trained = sorted(t for t, z in tasks.items() if z is False)
        unknown = sorted(t for t, z in tasks.items() if z is None)
        said = f"zero-shot on {len(tasks) - len(trained) - len(unknown)} of {len(tasks)} tasks"
        if trained:
            said += f"; trained on (not zero-shot): {', '.join(map(md, trained))}"
        if unknown:
            said += f"; unknown (no training data declared): {', '.join(map(md, unknown))}"
        lines += ["", f"{md(model)}: {said}."]
    return lines


def _mean(value: float | None, present: float | None) -> str:
    if value is not None:
        return f"{value:.4f}"
    return f"- ({present:.4f} over the tasks present)" if present is not None else "-"


def _board(rows: list[BoardRow]) -> list[str]:
    lines = ["", "### Leaderboard row", ""]
    if not rows:
        return [*lines, "No row: no benchmark holds all of the bundles' tasks (or mteb could "
                "not read the model's metadata)."]  # fmt: skip
    header = ["model", "benchmark", "Mean (Task)", "Mean (TaskType)", "missing tasks", "zero-shot"]
    body = []
    for r in rows:
        missing = f"{len(r.missing)} of {r.tasks}" if r.missing else "none"
        if 0 < len(r.missing) <= 5:
            missing += f": {', '.join(r.missing)}"
        zero = f"{r.zero_shot} %" if r.zero_shot is not None else "unknown (no training data)"
        body.append([
            r.model, r.benchmark, _mean(r.mean_task, r.present_mean_task),
            _mean(r.mean_task_type, r.present_mean_task_type), missing, zero,
        ])  # fmt: skip
    return [*lines, *_table(header, body)]


def review_markdown(review: Review) -> str:
    """The review as Markdown; its first line is the one-line verdict."""
    lines = [md(review.verdict()), ""]
    where = f"HEAD {review.head[:12]} against {review.base}"
    if review.outside:
        where += f"; {review.outside} files outside results/ are not reviewed"
    lines += [md(where), "", *_bundles(review), "", "### Files"]
    for f in review.files:
        lines += _file(f)
    lines += _rules(review.rules) + _tasks(review) + _board(review.board)
    return "\n".join(lines) + "\n"
