"""The results repository's rules and drift on the pull request's own files (export's --check).

For each revision folder the pull request changes, the folder as HEAD holds it is laid out as
``kit.publish.reporules.Layout`` (the base's bytes of the changed files, the model's other
revision folders at HEAD, drift of each changed task file against the base) and checked by
``check_rules`` without ``--allow-drift``. The rows kept are those of the changed files and of
the folder's model_meta.json (naming, revision, organisation, registry).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import PurePosixPath
from typing import Any

from kit.bundle.jsonread import parse
from kit.publish.repomerge import drifts
from kit.publish.reporules import Layout, RuleCheck, check_rules
from kit.publish.review.pullrequest import PullRequest
from kit.runfolder import MODEL_META, RUN_SETTINGS


def _json(data: bytes) -> Any:
    try:
        return parse(data, allow_nan=True)
    except ValueError:
        return None


def _is_task(name: str) -> bool:
    return name.endswith(".json") and name not in {MODEL_META, RUN_SETTINGS}


def _other_revisions(pr: PullRequest, folder: PurePosixPath) -> dict[str, list[str]]:
    """The model's other revision folders at HEAD -> their task file names."""
    out: dict[str, list[str]] = {}
    for path in pr.head_tree(folder.parent):
        p = PurePosixPath(path)
        other = p.parent.parent == folder.parent and p.parent != folder
        if other and _is_task(p.name) and not p.parent.name.startswith("."):
            out.setdefault(p.parent.name, []).append(p.name)
    return out


def folder_layout(pr: PullRequest, folder: PurePosixPath, changed: Collection[str]) -> Layout:
    """What ``folder`` holds at HEAD, with the base's bytes of its ``changed`` file names."""
    here = [p for p in pr.head_tree(folder.parent) if PurePosixPath(p).parent == folder]
    files = {PurePosixPath(p).name: d for p, d in pr.at_head(here).items() if d is not None}
    base = pr.at_base([(folder / n).as_posix() for n in sorted(changed)])
    old = {PurePosixPath(p).name: d for p, d in base.items() if d is not None}
    parsed = {n: _json(d) for n, d in files.items() if n.endswith(".json")}
    old_parsed = {n: _json(d) for n, d in old.items()}
    moved = {
        n: drifts(old_parsed[n], parsed.get(n), pr.base.short)
        for n in old
        if _is_task(n) and old_parsed.get(n) is not None
    }
    meta = parsed.get(MODEL_META)
    return Layout(
        folder=folder,
        meta=meta if isinstance(meta, dict) else {},
        files=files,
        other_revisions=_other_revisions(pr, folder),
        old=old,
        parsed=parsed,
        old_parsed=old_parsed,
        drift={n: d for n, d in moved.items() if d},
    )


def pull_request_rules(
    pr: PullRequest, registered: Callable[[str], bool], new_models: Collection[str]
) -> list[RuleCheck]:
    """Every rule row of the changed files (and their folders' model_meta.json), in order.

    ``registered``: whether a model name is in mteb's registry; ``new_models``: the names a
    verified bundle brings an mteb model entry for (a note, not a failure, as in export).
    """
    rows: list[RuleCheck] = []
    for folder in pr.folders():
        changed = [c.name for c in pr.changes if c.folder == folder and c.status != "removed"]
        if not changed:
            continue
        layout = folder_layout(pr, folder, changed)
        name = str(layout.meta.get("name"))
        keep = {(folder / n).as_posix() for n in [*changed, MODEL_META]}
        checked = check_rules(
            layout,
            registered=registered(name),
            new_model_entry=name in new_models,
            allow_drift=False,
        )
        rows.extend(r for r in checked if r.file in keep)
    return rows
