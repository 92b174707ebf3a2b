"""``review_pull_request``: a results pull request against the bundles attached to it.

The steps, each in its own module: the pull request's changed files (``pullrequest``), each
bundle fetched and verified once (``bundles``), their export into a work tree of the base
(``yielded``), each changed file against that yield (``compare``), the repository's rules on the
pull request's files (``prrules``), mteb's word on the tasks (``mtebstatus``) and the
leaderboard row (``leaderboard``); ``verdict`` holds the result and its exit code.
"""

from __future__ import annotations

import tempfile
from pathlib import Path, PurePosixPath

from kit.publish.review.bundles import ReviewedBundle, load_bundles
from kit.publish.review.compare import Comparison, compare_file
from kit.publish.review.leaderboard import ModelFiles, leaderboard_rows
from kit.publish.review.mtebstatus import registered, task_status
from kit.publish.review.prrules import pull_request_rules
from kit.publish.review.pullrequest import Change, PullRequest, open_pull_request
from kit.publish.review.verdict import FileVerdict, Review
from kit.publish.review.yielded import Yielded, yield_bundles
from kit.runfolder import MODEL_META, MTEB_ENTRY
from kit.signing.policy import SignaturePolicy
from kit.verify.zeroshot import of_records


def judge(change: Change, data: bytes | None, yielded: Yielded) -> FileVerdict:
    """The verdict on one changed file (``data``: its bytes at HEAD)."""
    backers = tuple(yielded.backers(change.path))
    if change.status == "removed" or data is None:
        gone = Comparison(removed=("the file",))
        return FileVerdict(change.path, change.status, "removed", backers, gone)
    ours = yielded.files.get(change.path)
    if change.folder is None or ours is None:
        why = "no bundle yields this file"
        return FileVerdict(change.path, change.status, "unbacked", reason=why)
    found = compare_file(change.path, data, ours)
    return FileVerdict(change.path, change.status, found.verdict, backers, found)


def _is_task(change: Change) -> bool:
    """A task file the pull request adds or modifies."""
    name, kept = change.name, change.status != "removed"
    return kept and change.folder is not None and name.endswith(".json") and name != MODEL_META


def _models(pr: PullRequest, bundles: list[ReviewedBundle], yielded: Yielded) -> list[ModelFiles]:
    """The models of verified bundles whose folders the pull request changes."""
    changed = {c.folder.parent for c in pr.changes if c.folder is not None}
    out: dict[str, ModelFiles] = {}
    for b in bundles:
        folder = yielded.folders.get(b.number)
        if b.verified is None or folder is None or folder.parent not in changed:
            continue
        manifest = b.verified.manifest
        name = manifest["model"]["name"]
        prior = out.get(name)
        if prior is None:
            listed = [
                p
                for p in pr.head_tree(folder.parent)
                if PurePosixPath(p).parent.parent == folder.parent and p.endswith(".json")
            ]
            files = {p: d for p, d in pr.at_head(listed).items() if d is not None}
            meta = yielded.files.get((folder / MODEL_META).as_posix())
            prior = ModelFiles(name, files, meta, (), ())
        bench = manifest.get("benchmark")
        out[name] = ModelFiles(
            name,
            prior.files,
            prior.meta,
            tuple(dict.fromkeys([*prior.benchmarks, *([bench] if bench else [])])),
            tuple(sorted({*prior.tasks, *manifest["tasks"]})),
        )
    return list(out.values())


def review_pull_request(
    repo: Path, base_ref: str, sources: list[str], policy: SignaturePolicy
) -> Review:
    """Review HEAD of the results checkout ``repo`` against the merge-base of ``base_ref`` and
    HEAD, with the bundles ``sources`` (paths or ``https://...#sha256=HEX``) checked under
    ``policy``. Refusals of single bundles are part of the result, not raised."""
    pr = open_pull_request(repo, base_ref)
    with tempfile.TemporaryDirectory(prefix="repro-kit-review-") as tmp:
        bundles = load_bundles(sources, policy, Path(tmp))
        yielded = yield_bundles(pr, bundles, Path(tmp))
    heads = pr.at_head([c.path for c in pr.changes if c.status != "removed"])
    files = [judge(c, heads.get(c.path), yielded) for c in pr.changes]
    files.sort(key=lambda f: (f.verdict == "backed", f.path))  # what needs a look comes first
    new_models = {
        b.verified.manifest["model"]["name"]
        for b in bundles
        if b.verified is not None and MTEB_ENTRY in b.verified.members
    }
    tasks = [c.name.removesuffix(".json") for c in pr.changes if _is_task(c)]
    return Review(
        repo=str(repo),
        base=pr.base.label,
        head=pr.head,
        bundles=bundles,
        files=files,
        rules=pull_request_rules(pr, registered, new_models),
        tasks=task_status(tasks),
        board=leaderboard_rows(_models(pr, bundles, yielded)),
        outside=pr.outside,
        export_failures={n: (e.code, e.message) for n, e in yielded.failures.items()},
        zero_shot=_zero_shot(bundles),
    )


def _zero_shot(bundles: list[ReviewedBundle]) -> dict[str, dict[str, bool | None]]:
    """Each verified bundle's model: zero-shot per task of the bundle (kit.verify.zeroshot)."""
    out: dict[str, dict[str, bool | None]] = {}
    for b in bundles:
        if b.verified is None:
            continue
        v = b.verified
        tasks = sorted(v.manifest["tasks"])
        zs = of_records(v.run, v.records.json, tasks)
        out.setdefault(v.manifest["model"]["name"], {}).update(zs.tasks)
    return out
