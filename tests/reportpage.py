"""Helpers of the report tests (tests/e2e/test_report.py, tests/system/test_report_chromium.py):
the values a report must show, recomputed from the bundle and the reference, and its HTML read
back (tags, table rows, styles, text)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

from kit.bundle.archive import read_bundle_archive as load_members
from tests.support import REFERENCE_DIR

REF = REFERENCE_DIR / "sentence-transformers__all-MiniLM-L6-v2.json"
TOL, MEAN_TOL = 0.001, 0.005


# -- expected values, recomputed from the bundle and the reference --------------------------


def manifest_of(bundle: Path) -> dict:
    """The bundle's manifest.json."""
    return json.loads(load_members(bundle)["manifest.json"])


def expected_rows(bundle: Path, ref: Path = REF) -> dict[str, dict]:
    """Per task: score, published reference, delta and pass/fail within TOL."""
    published = json.loads(ref.read_text())["task_main_scores"]
    out = {}
    for name, t in manifest_of(bundle)["tasks"].items():
        r = published.get(name)
        delta = None if r is None else t["main_score"] - r
        out[name] = {
            "score": t["main_score"],
            "reference": r,
            "delta": delta,
            "ok": None if delta is None else abs(delta) <= TOL,
        }
    return out


class Page(HTMLParser):
    """Tags with their attributes, table rows as cell texts, style text, visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.rows: list[list[str]] = []
        self.styles: list[str] = []
        self.text: list[str] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "style":
            self._in_style = True

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None
        elif tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)
            return
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def parse(html: str) -> Page:
    """The page read by ``Page``."""
    p = Page()
    p.feed(html)
    p.close()
    return p


def assert_no_network(html: str) -> None:
    """Nothing in the page loads from elsewhere; its CSP says so too."""
    page = parse(html)
    remote = re.compile(r"^\s*(https?:)?//", re.I)
    for tag, attrs in page.tags:
        assert tag not in ("script", "link", "iframe", "object", "embed", "img"), tag
        for name in ("src", "href", "xlink:href", "srcset", "poster", "action", "data"):
            value = attrs.get(name)
            assert value is None or not remote.match(value), (tag, name, value)
    css = "\n".join(page.styles) + "".join(a.get("style") or "" for _, a in page.tags)
    assert "@import" not in css
    assert not re.search(r"url\s*\(", css, re.I)
    assert not re.search(r"https?://", css, re.I)
    csp = [a for t, a in page.tags if t == "meta" and a.get("http-equiv")]
    assert csp and "default-src 'none'" in csp[0]["content"]


def task_row(page: Page, task: str) -> list[str]:
    """The one table row of ``task``."""
    rows = [r for r in page.rows if r and r[0] == task and len(r) >= 8]
    assert len(rows) == 1, (task, page.rows)
    return rows[0]
