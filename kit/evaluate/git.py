"""Git, asked about a folder in one place (the ``git`` command as a subprocess, never a library).

Today it answers two questions: which commit a checkout is at (``git_revision``) and whether
its tracked files changed (``is_dirty``). Every answer degrades to "unknown" (``None`` or
``False``) when git is missing, slow, or the folder is no repository, so a caller never fails
on git. A fuller ``repo_state(dir)`` (remote URLs, commit, branch, dirty, diff hash) belongs
here as well and can be built from ``_git`` the same way.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

DEFAULT_TIMEOUT = 10.0


def _git(root: Path, *args: str, timeout: float = DEFAULT_TIMEOUT) -> str | None:
    """``git -C root ARGS``'s stripped stdout, or None if git failed, is missing or timed out."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def git_revision(root: Path, timeout: float = DEFAULT_TIMEOUT) -> str | None:
    """The commit (full hex) checked out in the repository holding ``root``; None if unknown."""
    return _git(root, "rev-parse", "HEAD", timeout=timeout) or None


def is_dirty(root: Path, timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Whether tracked files of ``root``'s repository differ from HEAD (False if unknown)."""
    return bool(_git(root, "status", "--porcelain", "--untracked-files=no", timeout=timeout))
