"""Terminal rendering of reports (rich tables). Presentation only."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kit.cli.options import shown

_MARK = {True: "[green]pass[/]", False: "[red]FAIL[/]", None: "[yellow]skip[/]"}
_ZS = {True: "yes", False: "no", None: "?"}


def _t(x: object) -> str:
    """Text from a bundle or a file, safe in a rich cell: no markup, no control characters."""
    return escape(shown(x))


def _f(x: float | None, fmt: str = ".6f") -> str:
    return "-" if x is None else format(x, fmt)


def print_verify_report(console: Console, report: Any) -> None:
    table = Table(title=f"verify {_t(report.bundle)}", title_justify="left")
    table.add_column("check")
    table.add_column("result")
    table.add_column("reason", overflow="fold")
    for c in report.checks:
        table.add_row(_t(c.name), _MARK[c.ok], _t(c.reason))
    console.print(table)
    ref = report.reference
    if ref:
        t = Table(
            title=f"reference: {_t(ref['source'])} (tolerance {ref['tolerance']:g})",
            title_justify="left",
        )
        for col in ("task", "type", "score", "reference", "delta", "result"):
            t.add_column(col, justify="right" if col in ("score", "reference", "delta") else "left")
        for r in ref["tasks"]:
            t.add_row(
                _t(r["task"]),
                _t(r["type"]),
                _f(r["score"]),
                _f(r["reference"]),
                _f(r["delta"], "+.6f"),
                _MARK[r["ok"]],
            )
        for m in ref["means"]:
            t.add_row(
                f"{_t(m['mean'])} ({m['n_tasks']} tasks)",
                "",
                _f(m["score"]),
                _f(m["reference"]),
                _f(m["delta"], "+.6f"),
                _MARK[m["ok"]],
            )
        console.print(t)
    status = "[green]OK[/]" if report.ok else f"[red]FAILED[/] (exit {int(report.exit_code)})"
    console.print(f"verify: {status}")


def print_compare(console: Console, result: dict[str, Any]) -> None:
    t = Table(
        title=f"differences: A={_t(result['a'])}  B={_t(result['b'])} (likely causes first)",
        title_justify="left",
    )
    for col in ("#", "what", "A", "B", "why it matters"):
        t.add_column(col, overflow="fold")
    for d in result["differences"]:
        a, b = d.get("a_text", d["a"]), d.get("b_text", d["b"])  # one line each (--json: all)
        t.add_row(str(d["rank"]), _t(d["what"]), _t(a), _t(b), _t(d["why"]))
    if not result["differences"]:
        t.add_row("-", "no recorded difference", "", "", "")
    console.print(t)
    s = Table(title="scores (B - A)", title_justify="left")
    for col in ("task", "A", "B", "delta", "zero-shot A / B"):
        s.add_column(col, justify="left" if col in ("task", "zero-shot A / B") else "right")
    for r in result["tasks"]:
        zs = f"{_ZS[r.get('zero_shot_a')]} / {_ZS[r.get('zero_shot_b')]}"
        s.add_row(_t(r["task"]), _f(r["a"]), _f(r["b"]), _f(r["delta"], "+.6f"), zs)
    console.print(s)
    for side in ("a", "b"):
        zero = (result.get("zero_shot") or {}).get(side)
        if zero and zero.get("percentage") is not None:
            note = _t(zero["note"])
            console.print(f"zero-shot {side.upper()}: {zero['percentage']} % of the tasks ({note})")
    print_samples(console, result.get("samples") or [])


def print_samples(console: Console, rows: list[dict[str, Any]]) -> None:
    """Sample-level differences: per task and split/subset, how many moved, the largest."""
    if not rows:
        return
    t = Table(title="samples (per-sample predictions, B vs A)", title_justify="left")
    for col in ("task", "split/subset", "changed", "largest changes"):
        t.add_column(col, overflow="fold")
    for r in rows:
        where = f"{_t(r['split'])}/{_t(r['subset'])}"
        if not r["compared"]:
            t.add_row(_t(r["task"]), where, "-", _t(r["reason"]))
            continue
        shown = "; ".join(_t(_example(x)) for x in r["examples"])
        t.add_row(_t(r["task"]), where, _t(r["summary"]), shown or "-")
    console.print(t)


def _example(x: dict[str, Any]) -> str:
    if "query" in x:
        return f"query {x['query']}"
    return f"#{x['index']}: {x['a']} -> {x['b']}"


def print_rerun_report(console: Console, result: dict[str, Any]) -> None:
    """Per task: claimed, re-run, delta, pass/fail; environment differences on a failure."""
    if result.get("dry_run"):
        console.print("re-run: dry run, nothing re-run")
        return
    t = Table(
        title=f"re-run ({result['plan']['mode']}, tolerance {result['tolerance']:g}, "
        f"{result['wall_seconds']:.0f} s, expected ~{result['plan']['expected_seconds']:.0f} s)",
        title_justify="left",
    )
    for col in ("task", "claimed", "re-run", "delta", "identical", "result"):
        t.add_column(col, justify="left" if col in ("task", "result") else "right")
    for r in result["tasks"]:
        t.add_row(
            _t(r["task"]),
            _f(r["claimed"]),
            _f(r["rerun"]),
            _f(r["delta"], "+.2e") if r["delta"] else _f(r["delta"], "+.6f"),
            "yes" if r["identical"] else "no",
            _MARK[r["ok"]],
        )
    console.print(t)
    cache = result.get("embedding_cache") or {}
    hits = f", {cache['hits']} hits / {cache['misses']} misses" if "hits" in cache else ""
    console.print(f"embedding cache: {_t(cache.get('reason', '-'))}{hits}")
    print_samples(console, result.get("samples") or [])
    if not result["ok"]:
        d = Table(title="environment differences (bundle vs re-run)", title_justify="left")
        for col in ("#", "what", "bundle", "re-run", "why it matters"):
            d.add_column(col, overflow="fold")
        for x in result.get("differences") or []:
            d.add_row(str(x["rank"]), _t(x["what"]), _t(x["a"]), _t(x["b"]), _t(x["why"]))
        if not result.get("differences"):
            d.add_row("-", "no recorded difference", "", "", "")
        console.print(d)
    status = "[green]OK[/]" if result["ok"] else f"[red]MISMATCH[/] (exit {result['exit_code']})"
    console.print(f"re-run: {status}")


_RULE_MARK = {"pass": "[green]pass[/]", "fail": "[red]FAIL[/]", "allowed": "[yellow]allowed[/]"}


def rules_table(rules: Any) -> None:
    """The results repository's rules as a table: rule, file, result, reason (stdout)."""
    out = Console()
    if not out.is_terminal:
        out = Console(width=1000, no_color=True)  # one row per line when piped
    table = Table(title="results-repository rules", title_justify="left")
    for col in ("rule", "file", "result", "reason"):
        table.add_column(col, overflow="fold")
    for r in rules:
        table.add_row(
            _t(r.rule), _t(r.file), _RULE_MARK.get(r.status, "[yellow]note[/]"), _t(r.reason)
        )
    out.print(table)
