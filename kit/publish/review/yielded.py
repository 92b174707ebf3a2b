"""What the bundles yield: each verified bundle exported, as ``repro-kit export`` would, into a
work tree of the pull request's base.

The work tree (``kit.machine.git.add_worktree``) holds only the bundles' model folders at the
merge-base; the bundles are exported into it one after the other (``kit.publish.export``:
merging into the base's files and into each other's as mteb's submit does), with
model_meta.json replaced and drift accepted, so that every file a bundle can yield is there to
compare: whether the pull request may replace them is the rules' question, asked of the pull
request's own files (``kit.publish.review.prrules``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from kit.errors import ExitCode, KitError
from kit.machine.git import add_worktree, remove_worktree
from kit.publish.export import plan_export
from kit.publish.repobase import Base, resolve_base
from kit.publish.review.bundles import ReviewedBundle
from kit.publish.review.pullrequest import PullRequest
from kit.runfolder import RESULTS, model_as_path


@dataclass
class Yielded:
    """The files the bundles' exports list (path from the repository's top -> bytes).

    ``listed_by``: the bundles whose export lists the file; ``changed_by``: those whose export
    wrote it (not left unchanged); ``failures``: bundle number -> why its export failed.
    """

    files: dict[str, bytes] = field(default_factory=dict)
    listed_by: dict[str, list[int]] = field(default_factory=dict)
    changed_by: dict[str, list[int]] = field(default_factory=dict)
    failures: dict[int, KitError] = field(default_factory=dict)
    folders: dict[int, PurePosixPath] = field(default_factory=dict)  # bundle -> its folder

    def backers(self, path: str) -> list[int]:
        """The bundles behind the file: those that wrote it, else those that list it."""
        return self.changed_by.get(path) or self.listed_by.get(path, [])


def _model_folder(bundle: ReviewedBundle) -> str:
    assert bundle.verified is not None
    return f"{RESULTS}/{model_as_path(bundle.verified.manifest['model']['name'])}"


def _upload_revision(pr: PullRequest, bundle: ReviewedBundle) -> str | None:
    """A local-model bundle's revision: the one revision folder the pull request adds for it."""
    assert bundle.verified is not None
    if bundle.verified.manifest["model"].get("source") != "local":
        return None
    model = PurePosixPath(_model_folder(bundle))
    revisions = sorted({c.folder.name for c in pr.changes if c.folder and c.folder.parent == model})
    if len(revisions) != 1:
        raise KitError(
            f"bundle {bundle.number} evaluated a local folder; the pull request holds "
            f"{len(revisions)} revision folders of {model.name}, so the upload's is unknown",
            ExitCode.USAGE,
        )
    return revisions[0]


def _export_one(
    pr: PullRequest, bundle: ReviewedBundle, tree: Path, base: Base, out: Yielded
) -> None:
    """Export one bundle into the work tree and note which files it lists and writes."""
    assert bundle.verified is not None
    plan = plan_export(
        bundle.verified,
        tree,
        overwrite=True,
        revision=_upload_revision(pr, bundle),
        allow_drift=True,
        base=base,
    )
    written: dict[Path, bytes] = {}
    out.folders[bundle.number] = plan.folder
    for name, merged in plan.files:
        rel = (plan.folder / name).as_posix()
        out.listed_by.setdefault(rel, []).append(bundle.number)
        if merged.action not in {"unchanged", "refused"}:
            out.changed_by.setdefault(rel, []).append(bundle.number)
            written[tree / rel] = merged.data
    try:  # a scratch work tree, removed after the review: no atomic renames, no fsync
        for dest, data in written.items():
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
    except OSError as e:
        raise KitError(f"cannot write the review's work tree: {e}", ExitCode.OUTPUT) from None


def yield_bundles(pr: PullRequest, bundles: list[ReviewedBundle], work: Path) -> Yielded:
    """Export every verified bundle into a sparse work tree at the pull request's base."""
    out = Yielded()
    ok = [b for b in bundles if b.ok]
    if not ok:
        return out
    tree = work / "base"
    add_worktree(pr.repo, tree, pr.base_commit, sorted({_model_folder(b) for b in ok}))
    try:
        base = resolve_base(tree, pr.base_commit)  # one base (and its reads) for every bundle
        for bundle in ok:
            try:
                _export_one(pr, bundle, tree, base, out)
            except KitError as e:
                out.failures[bundle.number] = e
        for path in out.listed_by:
            with contextlib.suppress(OSError):
                out.files[path] = (tree / path).read_bytes()
    finally:
        remove_worktree(pr.repo, tree)
    return out
