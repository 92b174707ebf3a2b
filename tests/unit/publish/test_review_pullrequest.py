"""kit.publish.review.pullrequest and the git helpers it stands on, on real temporary git
repositories: the changed files under results/ against the merge-base, batched reads at HEAD
and at the base, the sparse work tree at the base; and review's usage errors (one line, 2)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kit.cli import main
from kit.errors import ExitCode, KitError
from kit.machine.git import add_worktree, read_blobs, remove_worktree
from kit.publish.review.pullrequest import open_pull_request

M = "results/org__m/rev"


def _git(root: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t"}
    env |= {"GIT_COMMITTER_EMAIL": "t@e", "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        ["git", "-C", str(root), *args], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def _write(root: Path, files: dict[str, str | None]) -> None:
    for rel, text in files.items():
        if text is None:
            (root / rel).unlink()
            continue
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "x")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "results-repo"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    base = {f"{M}/A.json": "a", f"{M}/C.json": "c", "results/other__x/r/A.json": "o"}
    _write(root, base | {"README.md": "readme"})
    _git(root, "checkout", "-q", "-b", "pr")
    _write(root, {f"{M}/A.json": "a2", f"{M}/B.json": "b", f"{M}/C.json": None})
    _write(root, {"README.md": "changed", "results/notes.txt": "n"})
    _git(root, "checkout", "-q", "main")
    _write(root, {"results/later__y/r/A.json": "main moved on"})  # not in the pull request
    _git(root, "checkout", "-q", "pr")
    return root


def test_changes_under_results_against_the_merge_base(repo: Path) -> None:
    pr = open_pull_request(repo, "main")
    assert [(c.path, c.status) for c in pr.changes] == [
        ("results/notes.txt", "added"),
        (f"{M}/A.json", "modified"),
        (f"{M}/B.json", "added"),
        (f"{M}/C.json", "removed"),
    ]
    assert pr.outside == 1  # README.md
    assert [str(f) for f in pr.folders()] == [M]
    assert pr.changes[0].folder is None  # not in a revision folder: no bundle can yield it
    assert pr.at_head([f"{M}/A.json", f"{M}/C.json"]) == {f"{M}/A.json": b"a2", f"{M}/C.json": None}
    assert pr.at_base([f"{M}/A.json", f"{M}/B.json"]) == {f"{M}/A.json": b"a", f"{M}/B.json": None}
    assert "merge-base of main and HEAD" in pr.base.label
    inside = open_pull_request(repo / "results", "main")  # a folder of the checkout: its top
    assert inside.changes == pr.changes and inside.at_head([f"{M}/B.json"])[f"{M}/B.json"] == b"b"


def test_bad_repositories_and_refs_are_usage_errors(repo: Path, tmp_path: Path) -> None:
    for where, ref in ((repo, "no-such-ref"), (tmp_path, "main")):
        with pytest.raises(KitError) as e:
            open_pull_request(where, ref)
        assert e.value.code == ExitCode.USAGE
    with pytest.raises(KitError) as e:
        open_pull_request(tmp_path / "missing", "main")
    assert e.value.code == ExitCode.NOT_FOUND


def test_sparse_work_tree_at_the_base(repo: Path, tmp_path: Path) -> None:
    base = _git(repo, "merge-base", "main", "HEAD")
    tree = tmp_path / "wt"
    add_worktree(repo, tree, base, ["results/org__m", "results/none__z"])
    assert sorted(p.name for p in (tree / M).iterdir()) == ["A.json", "C.json"]
    assert (tree / M / "A.json").read_text() == "a"
    assert not (tree / "results/other__x").exists() and not (tree / "README.md").exists()
    assert _git(tree, "rev-parse", "HEAD") == base
    remove_worktree(repo, tree)
    assert not tree.exists() and str(tree) not in _git(repo, "worktree", "list")
    assert read_blobs(repo, base, [f"{M}/B.json", f"{M}/A.json"]) == {
        f"{M}/B.json": None,
        f"{M}/A.json": b"a",
    }


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["review", "repo", "--bundle", "b.tar.gz"], "--base"),
        (["review", "repo", "--base", "main"], "--bundle"),
        (
            [
                "review",
                "repo",
                "--base",
                "main",
                "--bundle",
                "b",
                "--any-signer",
                "--allowed-signers",
                "a",
            ],
            "--any-signer",
        ),
    ],
)
def test_review_usage_errors(args, needle, monkeypatch, capsys, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["repro-kit", *args])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == ExitCode.USAGE
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("repro-kit: error: ") and needle in lines[0]
