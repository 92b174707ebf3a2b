"""kit.publish.review.verdict and .markdown with fake bundles: the exit code's precedence, the
one-line verdict, and Markdown that nothing read from a pull request or bundle can inject into."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest

from kit.errors import ExitCode
from kit.publish.reporules import RuleCheck
from kit.publish.review.bundles import ReviewedBundle
from kit.publish.review.compare import Comparison, Difference
from kit.publish.review.markdown import md, review_markdown
from kit.publish.review.verdict import FileVerdict, Review
from kit.verify.checks import SignerInfo

FP = "SHA256:8q8aoLKjxPDH2cyVIqDsn+i4aMnsGpubUYLOokIzgFA"


def _bundle(number: int = 1, status: str = "verified", **kw: Any) -> ReviewedBundle:
    signer = SignerInfo(status, FP if status != "unsigned" else None, ("alice@example.org",))  # type: ignore[arg-type]
    fake = SimpleNamespace(
        signer=signer,
        manifest={"model": {"name": "org/m", "revision": "r"}, "tasks": {"A": {}}},
        members={},
        sha256="0" * 64,
    )
    return ReviewedBundle(number, f"b{number}.tar.gz", fake, **kw)  # type: ignore[arg-type]


def _refused(number: int, code: ExitCode) -> ReviewedBundle:
    return ReviewedBundle(number, f"b{number}.tar.gz", code=code, reason="signature: not allowed")


def _file(verdict: str, path: str = "results/org__m/r/A.json", **kw: Any) -> FileVerdict:
    return FileVerdict(path, "added", verdict, (1,), **kw)


def _review(files: list[FileVerdict], bundles: list[ReviewedBundle] | None = None,
            rules: list[RuleCheck] | None = None) -> Review:  # fmt: skip
    return Review("repo", "base", "f" * 40, bundles or [_bundle()], files, rules or [], [], [])


def _rule(status: str, code: ExitCode = ExitCode.EXPORT_RULES) -> RuleCheck:
    return RuleCheck("drift", "results/org__m/r/A.json", status, "test/default moved", code)


DIFFERS = Comparison(Difference(("f", "A", "test", "default", "x"), 0.1, 0.2))


@pytest.mark.parametrize(
    ("bundles", "files", "rules", "code"),
    [
        ([_bundle()], [_file("backed")], [_rule("pass")], ExitCode.OK),
        ([_bundle()], [], [], ExitCode.OK),
        ([_bundle()], [_file("backed")], [_rule("fail", ExitCode.DRIFT)], ExitCode.DRIFT),
        ([_bundle()], [_file("unbacked")], [_rule("fail")], ExitCode.REVIEW_UNBACKED),
        ([_bundle()], [_file("unbacked"), _file("removed")], [], ExitCode.REVIEW_DIFFERS),
        ([_bundle()], [_file("differs", comparison=DIFFERS)], [], ExitCode.REVIEW_DIFFERS),
        (
            [_bundle(), _refused(2, ExitCode.KEY_NOT_ALLOWED), _refused(3, ExitCode.SCHEMA)],
            [_file("differs", comparison=DIFFERS)],
            [_rule("fail")],
            ExitCode.KEY_NOT_ALLOWED,
        ),
        ([_refused(1, ExitCode.BUNDLE_DOWNLOAD)], [_file("unbacked")], [], 34),
    ],
)
def test_exit_code_precedence(bundles, files, rules, code) -> None:
    assert _review(files, bundles, rules).exit_code() == code


def test_all_backed_verdict_names_the_signer() -> None:
    review = _review([_file("backed", f"results/org__m/r/{t}.json") for t in "ABCDEFG"])
    assert review.verdict() == (
        f"7 files, all backed by 1 signed bundle (alice@example.org, {FP}); "
        "the repository's rules pass"
    )


def test_untrusted_and_unsigned_bundles_say_so() -> None:
    review = _review([_file("backed")], [_bundle(status="not_checked", untrusted=True)])
    assert f"by 1 bundle signed by an untrusted key ({FP} untrusted (no allowed-signers))" in (
        review.verdict()
    )
    review = _review([_file("backed")], [_bundle(status="unsigned")])
    assert "all backed by 1 unsigned bundle;" in review.verdict()


def test_a_difference_leads_the_verdict() -> None:
    review = _review([_file("backed"), _file("differs", "results/org__m/r/B.json",
                                             comparison=DIFFERS)])  # fmt: skip
    assert review.verdict().startswith(
        "2 files: 1 backed, 1 differs; first difference: f / A / test / default / x: "
        "pull request 0.1, bundle 0.2"
    )


def test_markdown_starts_with_the_verdict_and_escapes_what_it_reads() -> None:
    evil = "results/org__m/r/x|y`<img src=x onerror=alert(1)>\n## @admin #12 [a](b)\u202e.json"
    review = _review([_file("unbacked", evil, reason="no bundle yields this file")])
    text = review_markdown(review)
    lines = text.splitlines()
    assert lines[0] == md(review.verdict())
    assert "\u202e" not in text and not any(ln.startswith("## ") for ln in lines)
    cells = []  # unescaped pipes per line of each table: a value never adds a cell
    for line in [*lines, ""]:
        bare = re.sub(r"\\.", "", line.lstrip("#"))  # what is left once escapes are removed
        assert not set(bare) & set("`<>[]@#*_"), line
        if line.startswith("|"):
            cells.append(bare.count("|"))
        elif cells:
            assert len(set(cells)) == 1, cells
            cells = []
    assert "x\\|y\\`\\<img" in text and "\\u000a" in text and "\\u202e" in text
    assert "\\@\u2060admin" in text and "\\#\u206012" in text  # no mention, no issue link


def test_md_keeps_plain_text_plain() -> None:
    assert md("all-MiniLM-L6-v2 0.8203 (test/default): 7 %") == (
        "all-MiniLM-L6-v2 0.8203 (test/default): 7 %"
    )
    assert md("a_b*c") == "a\\_b\\*c"


def test_zero_shot_per_task_is_shown_and_names_the_trained_tasks_escaped() -> None:
    review = _review([_file("backed")])
    review.zero_shot["org/m|x"] = {"STSBenchmark": False, "STS12": True, "Odd`Task": None}
    page = review_markdown(review)
    line = next(x for x in page.splitlines() if x.startswith("org/m"))
    assert (
        "zero-shot on 1 of 3 tasks" in line and "trained on (not zero-shot): STSBenchmark" in line
    )
    assert "unknown (no training data declared): Odd\\`Task" in line and "m\\|x" in line
    assert review.as_json()["zero_shot"]["org/m|x"]["STSBenchmark"] is False
