"""The pull request under review: its base, its head and the files it changes under results/.

The base is what the results repository's CI compares a pull request with: the merge-base of
``--base REF`` and HEAD (``kit.publish.repobase``). Only committed files count (HEAD, not the
work tree). Files are read from git objects in batches (``kit.machine.git.read_blobs``), so a
pull request of hundreds of files costs a few git processes, not hundreds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath

from kit.errors import ExitCode, KitError
from kit.machine.git import changed_files, commit_of, read_blobs, tree_files, work_tree_top
from kit.publish.repobase import Base, resolve_base
from kit.runfolder import RESULTS

_STATUS = {"A": "added", "D": "removed"}  # anything else (M, T) is a modification


@dataclass(frozen=True)
class Change:
    """One changed file under results/: its path from the repository's top and how it changed."""

    path: str
    status: str  # added, modified or removed

    @cached_property
    def folder(self) -> PurePosixPath | None:
        """``results/<org__model>/<revision>`` when the file lies directly in one, else None."""
        parts = PurePosixPath(self.path).parts
        return PurePosixPath(*parts[:3]) if len(parts) == 4 and parts[0] == RESULTS else None

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name


@dataclass
class PullRequest:
    """A results checkout's HEAD against the merge-base of a ref and HEAD."""

    repo: Path
    base: Base
    head: str
    changes: tuple[Change, ...]
    outside: int  # files changed outside results/ (not reviewed)
    _head: dict[str, bytes | None] = field(default_factory=dict, repr=False)
    _base: dict[str, bytes | None] = field(default_factory=dict, repr=False)
    _trees: dict[PurePosixPath, list[str]] = field(default_factory=dict, repr=False)

    @property
    def base_commit(self) -> str:
        assert self.base.commit is not None  # open_pull_request refuses a checkout without one
        return self.base.commit

    def _read(self, cache: dict[str, bytes | None], commit: str, paths: list[str]) -> None:
        todo = [p for p in dict.fromkeys(paths) if p not in cache]
        cache.update(read_blobs(self.repo, commit, todo))

    def at_head(self, paths: list[str]) -> dict[str, bytes | None]:
        """Each path's bytes at HEAD (None where HEAD has no such file)."""
        self._read(self._head, self.head, paths)
        return {p: self._head[p] for p in paths}

    def at_base(self, paths: list[str]) -> dict[str, bytes | None]:
        """Each path's bytes at the base (None where the base has no such file)."""
        self._read(self._base, self.base_commit, paths)
        return {p: self._base[p] for p in paths}

    def head_tree(self, folder: PurePosixPath) -> list[str]:
        """The files under ``folder`` at HEAD (paths from the top), listed once per folder."""
        if folder not in self._trees:
            self._trees[folder] = tree_files(self.repo, self.head, folder.as_posix()) or []
        return self._trees[folder]

    def folders(self) -> list[PurePosixPath]:
        """The revision folders holding a changed file, sorted."""
        return sorted({c.folder for c in self.changes if c.folder is not None})


def open_pull_request(repo: Path, base_ref: str) -> PullRequest:
    """The pull request HEAD makes against the merge-base of ``base_ref`` and HEAD in ``repo``.

    A folder that is no git checkout, a ref that is no commit, or one without a common commit
    with HEAD is a usage error (2), as for export's ``--base``.
    """
    repo = Path(repo)
    if not repo.is_dir():
        raise KitError(f"{repo} not found (a results checkout)", ExitCode.NOT_FOUND)
    repo = work_tree_top(repo) or repo  # paths are the repository's, from its top
    base = resolve_base(repo, base_ref)
    head = commit_of(repo, "HEAD")
    if base.commit is None or head is None:
        raise KitError(f"{repo} has no commit to review", ExitCode.USAGE)
    every = changed_files(repo, base.commit, head, ".")
    if every is None:
        raise KitError(f"git cannot list the changes of {repo}", ExitCode.USAGE)
    changes = tuple(
        Change(path, _STATUS.get(status, "modified"))
        for status, path in every
        if PurePosixPath(path).parts[:1] == (RESULTS,)
    )
    return PullRequest(repo, base, head, changes, len(every) - len(changes))
