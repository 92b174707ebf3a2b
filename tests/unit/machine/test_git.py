"""kit.evaluate.git on a real temporary repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kit.machine.git import git_revision, is_dirty


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q")
    _git(root, "config", "user.email", "t@example.org")
    _git(root, "config", "user.name", "t")
    (root / "a.txt").write_text("one\n")
    _git(root, "add", "a.txt")
    _git(root, "commit", "-q", "-m", "one")
    return root


def test_revision_and_dirty(repo: Path) -> None:
    rev = git_revision(repo)
    assert rev == _git(repo, "rev-parse", "HEAD") and len(rev) == 40
    assert git_revision(repo / ".git") == rev  # any folder inside the repository
    assert not is_dirty(repo)
    (repo / "new.txt").write_text("untracked\n")
    assert not is_dirty(repo)  # untracked files do not count
    (repo / "a.txt").write_text("two\n")
    assert is_dirty(repo)


def test_not_a_repository_or_no_commit_is_unknown(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    assert git_revision(plain) is None and not is_dirty(plain)
    assert git_revision(tmp_path / "missing") is None
    empty = tmp_path / "empty"
    empty.mkdir()
    _git(empty, "init", "-q")
    assert git_revision(empty) is None  # "git rev-parse HEAD" fails before the first commit


def test_without_git_on_path(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(repo / "nowhere"))
    assert git_revision(repo) is None and not is_dirty(repo)
