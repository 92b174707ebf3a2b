"""Render the report model (kit/publish/report.py) as Markdown to paste into a pull request.

Untrusted strings are escaped so they cannot break a table, inject HTML, links or emphasis.
"""

from __future__ import annotations

import re
from typing import Any

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
    """The report model as Markdown: verdict, means, tasks, types, coverage, environment."""
    lines = [*_md_head(model), *_md_tasks(model), *_md_published(model), *_md_coverage(model)]
    lines += ["#### Environment", ""]
    lines += _table(["", ""], [[md(k), md(v)] for k, v in model["environment"]])
    lines.append(f"<sub>{md(model['generator'])}</sub>")
    return "\n".join(lines) + "\n"


def _md_head(model: dict[str, Any]) -> list[str]:
    """The title, verdict, signer, reference, tolerance, scope and the benchmark means."""
    b, sig, against = model["bundle"], model["signer"], model.get("against")
    _, verdict = verdict_text(model)
    lines = [
        f"### repro-kit report: {md(b['model'])} @ {md(b['revision'])}",
        "",
        f"**{md(verdict)}**",
        "",
        f"- Signer: {md(sig['text'])}",
        "- Reference: "
        + (f"{md(against['label'])} ({md(against['kind'])})" if against else "none"),
        f"- Tolerance: ±{model['tolerance']:g} per task, ±{model['mean_tolerance']:g} for means "
        "(absolute, 0–1 scale)",
        f"- Scope: {md(model['scope']['text'])}",
        "",
        "#### Benchmark means",
        "",
    ]
    lines += _table(
        ["Mean (what it averages)", "score", "×100", "reference, same tasks", "delta", "result"],
        [
            [
                md(m["label"]),
                _n(m["score"]),
                _n(m["score"] * 100, ".2f"),
                _n(m["reference"]),
                _n(m["delta"], "+.6f"),
                _MARK[m["ok"]],
            ]
            for m in model["means"]
        ],
        frozenset({1, 2, 3, 4}),
    )
    return lines


def _md_tasks(model: dict[str, Any]) -> list[str]:
    """Per task, and per task type when there is a reference."""
    lines = [f"#### Tasks ({len(model['tasks'])})", ""]
    lines += _table(
        ["task", "type", "main metric", "score", "reference", "delta", "result"],
        [
            [
                md(r["task"]),
                md(r["type"]),
                md(r["main_metric"]),
                _n(r["score"]),
                _n(r["reference"]),
                _n(r["delta"], "+.6f"),
                _MARK[r["ok"]],
            ]
            for r in model["tasks"]
        ],
        frozenset({3, 4, 5}),
    )
    if model["types"]:
        lines += ["#### Delta per task type (mean over its tasks)", ""]
        lines += _table(
            ["type", "tasks", "score", "reference", "delta", "result"],
            [
                [
                    md(t["type"]),
                    str(t["n_tasks"]),
                    _n(t["score"]),
                    _n(t["reference"]),
                    _n(t["delta"], "+.6f"),
                    _MARK[t["ok"]],
                ]
                for t in model["types"]
            ],
            frozenset({1, 2, 3, 4}),
        )
    return lines


def _md_published(model: dict[str, Any]) -> list[str]:
    """The means the reference itself publishes (none when it publishes none)."""
    lines: list[str] = []
    pubs = model.get("published_means") or []
    if pubs:
        lines += [
            "#### Means published in the reference (labels as the file names them)",
            "",
            "They average the benchmark's own task sets, not this bundle's.",
            "",
        ]
        lines += _table(
            ["label in the reference", "what it averages", "value", "×100"],
            [
                [md(p["label"]), md(p["gloss"]), _n(p["value"]), _n(p["value"] * 100, ".2f")]
                for p in pubs
            ],
            frozenset({2, 3}),
        )
    return lines


def _md_coverage(model: dict[str, Any]) -> list[str]:
    """The tasks only one side has, when there is a reference."""
    lines: list[str] = []
    s, against = model["summary"], model.get("against")
    if against and (s["no_reference"] or s.get("only_against")):
        lines += ["#### Coverage", ""]
        if s["no_reference"]:
            lines.append(f"- Only in this bundle: {md(', '.join(s['no_reference']))}")
        if s.get("only_against"):
            more = s["only_against"]
            shown = ", ".join(more[:12]) + (f" and {len(more) - 12} more" if len(more) > 12 else "")
            lines.append(f"- Only in {md(against['label'])}: {md(shown)}")
        lines.append("")
    return lines
