"""The base an export is compared with: what the results repository's CI compares a PR with.

The repository's tests (``tests/git_utils.py``) diff a pull request against
``git merge-base origin/main HEAD`` (else ``main``): drift and "nothing removed" are measured
against that commit, not against the working tree, so a second export on a PR branch is
compared with the published file and not with the first export. ``--base REF`` names another
upstream; a checkout without one is compared with HEAD, and a folder that is no git checkout
with its own files (both said in the summary).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from kit.errors import ExitCode, KitError
from kit.machine.git import commit_of, file_at, in_work_tree, merge_base, read_blobs, tree_files

UPSTREAMS = ("origin/main", "main")  # the order the results repository's tests try


@dataclass(frozen=True)
class Base:
    """Where drift is measured from: a commit of the checkout, or its files (``commit`` None)."""

    repo: Path
    commit: str | None
    label: str
    git: bool = True
    _folders: dict[str, dict[str, bytes | None]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def read(self, rel: PurePosixPath) -> bytes | None:
        """The file at the base (None where the base has no such file).

        The first read in a folder reads all of that folder's files at the base in one git
        process (a 56-task export asks for 56 files of one folder).
        """
        if not self.git:
            try:
                return (self.repo / rel).read_bytes()
            except OSError:
                return None
        if self.commit is None:
            return None
        folder = rel.parent.as_posix()
        if folder not in self._folders:
            listed = tree_files(self.repo, self.commit, folder)
            if listed is None:
                return file_at(self.repo, self.commit, rel.as_posix())
            here = [p for p in listed if PurePosixPath(p).parent.as_posix() == folder]
            self._folders[folder] = read_blobs(self.repo, self.commit, here)
        return self._folders[folder].get(rel.as_posix())

    @property
    def short(self) -> str:
        """How a rule row names the base."""
        if not self.git:
            return "the folder's file"
        return f"base {self.commit[:12]}" if self.commit else "base (none)"


def resolve_base(repo: Path, ref: str | None = None) -> Base:
    """The merge-base of ``ref`` (default: origin/main, else main) and HEAD in ``repo``.

    No git checkout: its own files (a given ``ref`` is a usage error). No commit yet: nothing to
    compare with. No upstream: HEAD. An unknown ``ref`` or one without a common commit: 2.
    """
    repo = Path(repo)
    if not repo.is_dir() or not in_work_tree(repo):
        if ref is not None:
            raise KitError(
                f"{repo} is not a git checkout: there is no {ref} to compare with", ExitCode.USAGE
            )
        return Base(repo, None, "the folder's own files (not a git checkout)", git=False)
    head = commit_of(repo, "HEAD")
    if head is None:
        if ref is not None:
            raise KitError(
                f"{repo} has no commit yet: there is no {ref} to compare with", ExitCode.USAGE
            )
        return Base(repo, None, "nothing (the checkout has no commit yet)")
    for upstream in (ref,) if ref is not None else UPSTREAMS:
        if commit_of(repo, upstream) is None:
            if ref is not None:
                raise KitError(f"{ref} is not a commit in {repo}", ExitCode.USAGE)
            continue
        found = merge_base(repo, upstream)
        if found is None:
            raise KitError(f"{upstream} and HEAD have no common commit in {repo}", ExitCode.USAGE)
        return Base(repo, found, f"{found[:12]}, the merge-base of {upstream} and HEAD")
    return Base(repo, head, f"HEAD {head[:12]} (no origin/main or main in the checkout)")
