"""Git, asked about a folder in one place (the ``git`` command as a subprocess, never a library).

``git_revision``, ``is_dirty``, ``work_tree_top`` and ``remote_url`` answer "unknown"
(``None``/``False``) when git is missing, slow, or the folder is no repository, so a caller
never fails on them. ``init_repository`` makes a new repository (a results checkout for
``export --init``). ``code_state`` records the training code of a model (``evaluate --code
DIR``): remote URLs (credentials removed), commit, branch, whether the tree is dirty and a
hash of the difference when it is; a folder that is no git repository is a usage error there.
``commit_of``, ``merge_base`` and ``file_at`` read a results checkout's history (export
measures drift against its pull request's base); ``changed_files``, ``tree_files`` and
``read_blobs`` (many files in one ``git cat-file --batch``) read a pull request's files, and
``add_worktree``/``remove_worktree`` give review a sparse work tree at the pull request's base.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from kit.errors import ExitCode, KitError

DEFAULT_TIMEOUT = 10.0


def _git_bytes(root: Path, *args: str, timeout: float = DEFAULT_TIMEOUT) -> bytes | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def _git(root: Path, *args: str, timeout: float = DEFAULT_TIMEOUT) -> str | None:
    """``git -C root ARGS``'s stripped stdout, or None if git failed, is missing or timed out."""
    out = _git_bytes(root, *args, timeout=timeout)
    return out.decode("utf-8", "replace").strip() if out is not None else None


def git_revision(root: Path, timeout: float = DEFAULT_TIMEOUT) -> str | None:
    """The commit (full hex) checked out in the repository holding ``root``; None if unknown."""
    return _git(root, "rev-parse", "HEAD", timeout=timeout) or None


def is_dirty(root: Path, timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Whether tracked files of ``root``'s repository differ from HEAD (False if unknown)."""
    return bool(_git(root, "status", "--porcelain", "--untracked-files=no", timeout=timeout))


_USERINFO = re.compile(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", re.IGNORECASE)


def public_url(url: str) -> str:
    """A remote URL without credentials (``https://user:token@host/x`` -> ``https://host/x``)."""
    return _USERINFO.sub(r"\1", url.strip())


def code_state(root: Path, allow_dirty: bool) -> dict[str, Any]:
    """The git state of a training-code folder; exit 2 if it is no repository or dirty.

    A dirty tree is accepted with ``allow_dirty`` and recorded as such, with the sha256 of
    ``git diff --binary HEAD`` followed by each untracked file's path and sha256.
    """
    root = Path(root)
    if not root.is_dir():
        raise KitError(f"--code {root}: not a folder", ExitCode.USAGE)
    top = _git(root, "rev-parse", "--show-toplevel")
    commit = _git(root, "rev-parse", "HEAD")
    if not top or not commit:
        raise KitError(
            f"--code {root}: not a git repository with a commit (git init; git commit)",
            ExitCode.USAGE,
        )
    remotes: dict[str, str] = {}
    for line in (_git(root, "remote", "-v") or "").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] not in remotes:
            remotes[parts[0]] = public_url(parts[1])
    porcelain = (_git_bytes(root, "status", "--porcelain") or b"").decode("utf-8", "replace")
    lines = [x for x in porcelain.splitlines() if x]
    dirty = bool(lines)
    if dirty and not allow_dirty:
        raise KitError(
            f"--code {root}: the working tree has uncommitted changes ({lines[0][3:]}"
            f"{' and more' if len(lines) > 1 else ''}); commit them, or pass "
            "--allow-dirty (recorded in run.json)",
            ExitCode.USAGE,
        )
    state: dict[str, Any] = {
        "commit": commit,
        "branch": _git(root, "symbolic-ref", "--short", "-q", "HEAD") or None,
        "remotes": remotes,
        "dirty": dirty,
        "allow_dirty": allow_dirty,
        "diff_sha256": _diff_hash(Path(top)) if dirty else None,
    }
    return state


def _diff_hash(top: Path) -> str:
    h = hashlib.sha256(_git_bytes(top, "diff", "--binary", "HEAD") or b"")
    untracked = (_git(top, "ls-files", "--others", "--exclude-standard", "-z") or "").split("\0")
    for rel in sorted(p for p in untracked if p):
        h.update(b"\0untracked\0" + rel.encode("utf-8", "surrogateescape") + b"\0")
        try:
            h.update(hashlib.sha256((top / rel).read_bytes()).digest())
        except OSError:
            h.update(b"unreadable")
    return h.hexdigest()


def work_tree_top(path: Path) -> Path | None:
    """The top folder of the git work tree holding ``path`` (resolved); None if none."""
    top = _git(Path(path), "rev-parse", "--show-toplevel")
    return Path(top).resolve() if top else None


def remote_url(root: Path, name: str = "origin") -> str | None:
    """The URL of remote ``name`` of ``root``'s repository, credentials removed; None if none."""
    url = _git(root, "remote", "get-url", name)
    return public_url(url) if url else None


def init_repository(path: Path) -> None:
    """``git init`` a new repository at ``path`` (made when missing); OUTPUT if git fails."""
    Path(path).mkdir(parents=True, exist_ok=True)
    try:
        proc = subprocess.run(
            ["git", "init", "-q", str(path)], capture_output=True, timeout=DEFAULT_TIMEOUT
        )
    except (OSError, subprocess.SubprocessError) as e:
        raise KitError(f"cannot run git init in {path}: {e}", ExitCode.OUTPUT) from None
    if proc.returncode != 0:
        why = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["git failed"]
        raise KitError(f"git init {path}: {why[0]}", ExitCode.OUTPUT)


def commit_of(root: Path, ref: str) -> str | None:
    """The commit ``ref`` names in ``root``'s repository (full hex), or None."""
    return _git(root, "rev-parse", "--verify", "-q", f"{ref}^{{commit}}") or None


def merge_base(root: Path, ref: str, other: str = "HEAD") -> str | None:
    """``git merge-base REF OTHER`` in ``root``'s repository, or None (no common commit)."""
    return _git(root, "merge-base", ref, other) or None


def in_work_tree(root: Path) -> bool:
    """Whether ``root`` is inside a git working tree."""
    return _git(root, "rev-parse", "--is-inside-work-tree") == "true"


def file_at(root: Path, commit: str, relpath: str) -> bytes | None:
    """A file's bytes at ``commit``, its path relative to ``root``; None where it is absent."""
    return _git_bytes(root, "cat-file", "blob", f"{commit}:./{relpath}")


def changed_files(root: Path, base: str, head: str, under: str) -> list[tuple[str, str]] | None:
    """``(status, path)`` of every file under ``under`` that differs between ``base`` and
    ``head`` (``A`` added, ``M`` modified, ``D`` deleted, ``T`` type changed; renames count as a
    deletion and an addition), sorted by path; None when git fails."""
    out = _git_bytes(
        root, "diff", "--name-status", "--no-renames", "-z", base, head, "--", under, timeout=120
    )
    if out is None:
        return None
    fields = out.decode("utf-8", "surrogateescape").split("\0")
    pairs = [(fields[i][:1], fields[i + 1]) for i in range(0, len(fields) - 1, 2)]
    return sorted(pairs, key=lambda p: p[1])


def tree_files(root: Path, commit: str, under: str) -> list[str] | None:
    """The files of ``commit`` under the folder ``under`` (paths relative to ``root``), or None."""
    out = _git_bytes(root, "ls-tree", "-r", "--name-only", "-z", commit, "--", under, timeout=120)
    if out is None:
        return None
    return [p for p in out.decode("utf-8", "surrogateescape").split("\0") if p]


def read_blobs(root: Path, commit: str, paths: list[str]) -> dict[str, bytes | None]:
    """Each path's bytes at ``commit`` (paths relative to ``root``, as ``file_at`` takes them;
    None where absent), read by one ``git cat-file --batch``."""
    if not paths:
        return {}
    request = b"".join(f"{commit}:./{p}\n".encode("utf-8", "surrogateescape") for p in paths)
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), "cat-file", "--batch"],
            input=request,
            capture_output=True,
            timeout=300,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return dict.fromkeys(paths)
    out, pos = proc.stdout, 0
    found: dict[str, bytes | None] = {}
    for path in paths:
        end = out.find(b"\n", pos)
        if end < 0:
            found[path] = None
            continue
        header = out[pos:end].split()
        if len(header) != 3 or header[1] != b"blob":
            found[path], pos = None, end + 1
            continue
        size = int(header[2])
        found[path] = out[end + 1 : end + 1 + size]
        pos = end + 1 + size + 1
    return found


def _run_or_fail(where: Path, *args: str) -> None:
    """``git -C where ARGS``; OUTPUT with git's last line when it fails."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(where), *args], capture_output=True, timeout=300, check=False
        )
    except (OSError, subprocess.SubprocessError) as e:
        raise KitError(f"git {args[0]} in {where}: {e}", ExitCode.OUTPUT) from None
    if proc.returncode != 0:
        why = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["failed"]
        raise KitError(f"git {args[0]} in {where}: {why[0]}", ExitCode.OUTPUT)


def add_worktree(root: Path, dest: Path, commit: str, folders: list[str]) -> None:
    """A detached work tree of ``root``'s repository at ``dest``, at ``commit``, holding only
    the files of ``folders`` (the rest is left out: a results repository is large). OUTPUT
    when git refuses."""
    _run_or_fail(root, "worktree", "add", "-q", "--no-checkout", "--detach", str(dest), commit)
    listed = _git_bytes(root, "ls-tree", "--name-only", "-z", commit, "--", *folders) or b""
    present = [f for f in listed.decode("utf-8", "surrogateescape").split("\0") if f]
    if present:
        _run_or_fail(dest, "checkout", "-q", commit, "--", *present)


def remove_worktree(root: Path, dest: Path) -> None:
    """Remove the work tree at ``dest`` (its files, then git's record of it)."""
    shutil.rmtree(dest, ignore_errors=True)
    _git_bytes(root, "worktree", "prune", timeout=120)
