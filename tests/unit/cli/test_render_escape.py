"""Names from a bundle reach the terminal as text: no rich markup, no control characters."""

from __future__ import annotations

import io

from rich.console import Console

from kit.cli.options import shown
from kit.cli.render import print_compare, print_verify_report
from kit.publish.markdown import md
from kit.verify.checks import VerifyReport

HOSTILE = "Type[/]\x1b[31mred\x1b]0;title\x07[bold]x[/bold]\nnext"


def _console() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=400, highlight=False, force_terminal=True), buf


def test_shown_escapes_controls_and_keeps_text() -> None:
    assert shown("a\x1bb\nc\x7f\u2028") == "a\\x1bb\\nc\\x7f\\u2028"
    assert shown("plain [/] text") == "plain [/] text"


def test_verify_table_with_markup_and_escapes_in_names() -> None:
    report = VerifyReport(f"bundle{HOSTILE}.tar.gz")
    report.add("scores", False, f"task {HOSTILE} differs", 13)
    report.reference = {
        "source": HOSTILE,
        "tolerance": 0.001,
        "tasks": [
            {
                "task": HOSTILE,
                "type": HOSTILE,
                "score": 0.5,
                "reference": 0.5,
                "delta": 0.0,
                "ok": True,
            }
        ],
        "means": [],
    }
    console, buf = _console()
    print_verify_report(console, report)  # rich raised MarkupError on '[/]' before
    out = buf.getvalue()
    assert "\x1b]0;" not in out and "\x07" not in out
    assert "\\x1b[31mred" in out and "[/]" in out and "[bold]x[/bold]" in out


def test_compare_table_escapes() -> None:
    console, buf = _console()
    print_compare(
        console,
        {
            "a": HOSTILE,
            "b": "b",
            "differences": [{"rank": 1, "what": HOSTILE, "a": HOSTILE, "b": 1, "why": "[/]"}],
            "tasks": [{"task": HOSTILE, "a": 0.1, "b": 0.2, "delta": 0.1}],
        },
    )
    assert "\x1b]0;" not in buf.getvalue() and "\\x1b" in buf.getvalue()


def test_markdown_cells() -> None:
    cell = md("a|b`c\nd\x1b[31m\x00<x>")
    assert "|" not in cell.replace("\\|", "")
    assert "`" not in cell.replace("\\`", "")
    assert "\n" not in cell and "\x1b" not in cell and "\x00" not in cell
    assert "&lt;x&gt;" in cell and "x1b" in cell
