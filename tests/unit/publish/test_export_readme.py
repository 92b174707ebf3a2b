"""README "Export to MTEB's results repository" says what export does: its options, the rules
in the order ``--check`` prints them, and the merge it performs (the e2e tests in
tests/e2e/test_export_pr.py check the behaviour itself)."""

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath

import click

from kit.cli.export import export
from kit.cli.options import trust_options
from kit.publish.repomerge import drifts
from kit.publish.reporules import Layout, check_rules
from tests.support import REPO

TITLE = "Export to MTEB's results repository"


def _section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(TITLE)}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f'README.md has no "## {TITLE}" section'
    return match.group(1)


def _every_rule() -> list[str]:
    """The rules in the order export applies them: model_meta.json's row first."""
    entry = {"hf_subset": "default", "main_score": 0.5, "languages": ["eng-Latn"]}
    doc = {"task_name": "T", "scores": {"test": [entry]}}
    meta = {"name": "org/m", "revision": "a" * 40}
    folder = PurePosixPath("results/org__m") / ("a" * 40)
    parsed = {"model_meta.json": meta, "T.json": doc}
    layout = Layout(
        folder=folder,
        meta=meta,
        files={n: json.dumps(v).encode() for n, v in parsed.items()},
        other_revisions={},
        old={"T.json": json.dumps(doc).encode()},
        parsed=parsed,
        old_parsed={"T.json": doc},
        drift={"T.json": drifts(doc, doc, "base")},
    )
    rules = check_rules(layout, registered=True, new_model_entry=False, allow_drift=False)
    return ["model meta", *dict.fromkeys(r.rule for r in rules)]


def test_rule_table_lists_every_rule_in_check_order() -> None:
    table = _section().split("| rule | what passes |", 1)[1]
    named = re.findall(r"^\| ([a-z ]+) \| ", table, re.MULTILINE)
    assert named == _every_rule()


def test_every_export_option_is_in_the_usage_line() -> None:
    """export's own options (the signature options are verify's, documented there)."""
    shared = click.command()(trust_options()(lambda **_: None))
    theirs = {flag for p in shared.params for flag in p.opts}
    usage = _section().split("```bash", 1)[1].split("```", 1)[0]
    for param in export.params:
        for flag in param.opts:
            if flag.startswith("--") and flag not in theirs:
                assert flag in usage, flag


def test_the_merge_is_described_as_it_is_done() -> None:
    text = " ".join(_section().split())
    for words in (
        "**left alone**",
        "`_has_unsubmitted_scores`",
        "**added**: only the subsets the file lacks are added, by mteb's `TaskResult.merge`",
        "refused (36) unless `--allow-drift`",
        "`--overwrite`, which replaces model_meta.json only",
        "merge-base of the checkout's upstream and HEAD (`origin/main`, else `main`; "
        "`--base REF` names another)",
        "`--check --all`",
        "a task file left alone keeps the settings line of the run that wrote it",
    ):
        assert words in text, words
