"""kit.publish.repobase on real temporary git repositories: the base drift is measured against
is the pull request's merge-base, as the results repository's tests take it; and which rule
rows ``export --check`` shows (kit.publish.export.ExportPlan.shown)."""

from __future__ import annotations

import subprocess
from pathlib import Path, PurePosixPath

import pytest

from kit.errors import ExitCode, KitError
from kit.publish.export import ExportPlan
from kit.publish.repobase import resolve_base
from kit.publish.repomerge import Merged
from kit.publish.reporules import RuleCheck

FILE = PurePosixPath("results/org__m/rev/T.json")


def _git(root: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t"}
    env |= {"GIT_COMMITTER_EMAIL": "t@e", "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        ["git", "-C", str(root), *args], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def _write_commit(root: Path, text: str) -> str:
    (root / FILE).parent.mkdir(parents=True, exist_ok=True)
    (root / FILE).write_text(text)
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", text)
    return _git(root, "rev-parse", "HEAD")


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    root = tmp_path / "upstream"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    _write_commit(root, "published")
    return root


def test_a_pr_branch_is_compared_with_its_merge_base(upstream: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "-q", str(upstream), str(clone))
    fork = _git(clone, "rev-parse", "HEAD")
    _git(clone, "checkout", "-q", "-b", "pr")
    _write_commit(clone, "first export")  # committed on the branch
    (clone / FILE).write_text("second export, not committed")
    base = resolve_base(clone)
    assert base.commit == fork and "merge-base of origin/main and HEAD" in base.label
    assert base.read(FILE) == b"published" and base.read(FILE.parent / "none.json") is None
    assert base.short == f"base {fork[:12]}"
    mine = resolve_base(clone, "HEAD")  # --base HEAD: the branch itself
    assert mine.read(FILE) == b"first export"
    with pytest.raises(KitError) as e:
        resolve_base(clone, "no-such-branch")
    assert e.value.code == ExitCode.USAGE


def test_local_main_then_head(upstream: Path) -> None:
    first = _git(upstream, "rev-parse", "HEAD")
    _git(upstream, "checkout", "-q", "-b", "pr")
    _write_commit(upstream, "on the branch")
    base = resolve_base(upstream)  # no origin: main, as the repository's tests fall back
    assert base.commit == first and "merge-base of main and HEAD" in base.label
    _git(upstream, "branch", "-q", "-m", "main", "trunk")
    head = resolve_base(upstream)
    assert head.commit == _git(upstream, "rev-parse", "HEAD") and head.label.startswith("HEAD ")
    assert "no origin/main or main" in head.label


def test_no_commit_or_no_git(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    _git(empty, "init", "-q")
    base = resolve_base(empty)
    assert base.commit is None and base.read(FILE) is None and "no commit yet" in base.label
    plain = tmp_path / "plain"
    (plain / FILE).parent.mkdir(parents=True)
    (plain / FILE).write_text("here")
    own = resolve_base(plain)
    assert not own.git and own.read(FILE) == b"here" and "not a git checkout" in own.label
    assert resolve_base(tmp_path / "missing").read(FILE) is None
    with pytest.raises(KitError) as e:
        resolve_base(plain, "origin/main")
    assert e.value.code == ExitCode.USAGE


def test_check_shows_the_touched_files_and_counts_the_rest() -> None:
    folder = PurePosixPath("results/org__m/rev")

    def row(rule: str, name: str, status: str = "pass") -> RuleCheck:
        return RuleCheck(rule, (folder / name).as_posix(), status, "r")

    rules = (
        row("naming", "model_meta.json"),
        row("size", "A.json"),
        row("size", "B.json"),
        row("size", "C.json"),
        row("task name", "D.json", "fail"),
        row("drift", "A.json", "allowed"),
    )
    touched = tuple((n, Merged(b"", "written")) for n in ("A.json", "model_meta.json"))
    plan = ExportPlan(Path("r"), folder, touched, rules, (), {})
    shown, hidden = plan.shown()
    assert [(r.rule, r.file.rsplit("/", 1)[1]) for r in shown] == [
        ("naming", "model_meta.json"),
        ("size", "A.json"),
        ("task name", "D.json"),  # a failure anywhere is shown
        ("drift", "A.json"),
    ]
    assert hidden == 2  # B.json and C.json
    assert plan.shown(everything=True) == (list(rules), 0)
