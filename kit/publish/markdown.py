"""Render the report model (kit/publish/report.py) as Markdown to paste into a pull request.

Untrusted strings are escaped so they cannot break a table, inject HTML, links or emphasis.
"""

from __future__ import annotations

import re
from typing import Any

from kit.publish.baseline import zero_shot_text
from kit.publish.html import verdict_text

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_MARK = {True: "pass", False: "**FAIL**", None: "no reference"}


def md(value: Any) -> str:
    """Escape a value for a Markdown table cell (no HTML, no markup, one line)."""
    text = " ".join(str(value).split())
    text = _CONTROL.sub(lambda m: ascii(m.group())[1:-1], text)  # ESC shown as \x1b
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def _n(x: float | None, fmt: str = ".6f") -> str:
    return "–" if x is None else format(x, fmt)


def _table(
    header: list[str], rows: list[list[str]], right: frozenset[int] = frozenset()
) -> list[str]:
    align = ["---:" if i in right else "---" for i in range(len(header))]
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return [*out, ""]


def render_md(model: dict[str, Any]) -> str:
    b, sig, against = model["bundle"], model["signer"], model.get("against")
    mode = model.get("mode", "")
    _, verdict = verdict_text(model)
    lines = [
        f"### repro-kit report: {md(b['model'])} @ {md(b['revision_text'])}",
        "",
        f"**{md(verdict)}**",
        "",
        f"- Signer: {md(sig['text'])}",
        ("- Baseline: " if model.get("mode") == "baseline" else "- Reference: ")
        + (f"{md(against['label'])} ({md(against['kind'])})" if against else "none"),
        f"- Tolerance: ±{model['tolerance']:g} per task, ±{model['mean_tolerance']:g} for means "
        "(absolute, 0–1 scale)",
        f"- Scope: {md(model['scope']['text'])}",
        *_zero_shot(model.get("zero_shot")),
        "",
        "#### Benchmark means",
        "",
    ]
    lines += _means(model["means"], mode)
    lines += _tasks(model["tasks"], mode)
    lines += _types(model["types"], mode)
    lines += _published(model.get("published_means") or [])
    lines += _coverage(model["summary"], against)
    lines += ["#### Environment", ""]
    lines += _table(["", ""], [[md(k), md(v)] for k, v in model["environment"]])
    lines.append(f"<sub>{md(model['generator'])}</sub>")
    return "\n".join(lines) + "\n"


def _mark(row: dict[str, Any], mode: str) -> str:
    """pass / **FAIL**, or win / tie / **loss** against a baseline (a win not zero-shot says so)."""
    result = row.get("result")
    if mode != "baseline" or result is None:
        return _MARK[row["ok"]]
    if result == "win" and row.get("zero_shot") is False:
        return "win (not zero-shot)"
    return "**loss**" if result == "loss" else str(result)


def _zero_shot(zs: dict[str, Any] | None) -> list[str]:
    return [f"- Zero-shot: {md(zero_shot_text(zs))}"] if zs else []


def _means(means: list[dict[str, Any]], mode: str) -> list[str]:
    return _table(
        ["Mean (what it averages)", "score", "×100", "reference, same tasks", "delta", "result"],
        [
            [
                md(m["label"]),
                _n(m["score"]),
                _n(m["score"] * 100, ".2f"),
                _n(m["reference"]),
                _n(m["delta"], "+.6f"),
                _mark(m, mode),
            ]
            for m in means
        ],
        frozenset({1, 2, 3, 4}),
    )


def _tasks(tasks: list[dict[str, Any]], mode: str) -> list[str]:
    lines = [f"#### Tasks ({len(tasks)})", ""]
    return lines + _table(
        ["task", "type", "main metric", "score", "reference", "delta", "result"],
        [
            [
                md(r["task"]),
                md(r["type"]),
                md(r["main_metric"]),
                _n(r["score"]),
                _n(r["reference"]),
                _n(r["delta"], "+.6f"),
                _mark(r, mode),
            ]
            for r in tasks
        ],
        frozenset({3, 4, 5}),
    )


def _types(types: list[dict[str, Any]], mode: str) -> list[str]:
    if not types:
        return []
    lines = ["#### Delta per task type (mean over its tasks)", ""]
    return lines + _table(
        ["type", "tasks", "score", "reference", "delta", "result"],
        [
            [
                md(t["type"]),
                str(t["n_tasks"]),
                _n(t["score"]),
                _n(t["reference"]),
                _n(t["delta"], "+.6f"),
                _mark(t, mode),
            ]
            for t in types
        ],
        frozenset({1, 2, 3, 4}),
    )


def _published(pubs: list[dict[str, Any]]) -> list[str]:
    if not pubs:
        return []
    lines = [
        "#### Means published in the reference (labels as the file names them)",
        "",
        "They average the benchmark's own task sets, not this bundle's.",
        "",
    ]
    return lines + _table(
        ["label in the reference", "what it averages", "value", "×100"],
        [
            [md(p["label"]), md(p["gloss"]), _n(p["value"]), _n(p["value"] * 100, ".2f")]
            for p in pubs
        ],
        frozenset({2, 3}),
    )


def _coverage(s: dict[str, Any], against: dict[str, Any] | None) -> list[str]:
    if not (against and (s["no_reference"] or s.get("only_against"))):
        return []
    lines = ["#### Coverage", ""]
    if s["no_reference"]:
        lines.append(f"- Only in this bundle: {md(', '.join(s['no_reference']))}")
    if s.get("only_against"):
        more = s["only_against"]
        shown = ", ".join(more[:12]) + (f" and {len(more) - 12} more" if len(more) > 12 else "")
        lines.append(f"- Only in {md(against['label'])}: {md(shown)}")
    lines.append("")
    return lines
