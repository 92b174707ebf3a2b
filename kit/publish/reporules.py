"""The results repository's CI rules, applied offline to what an export would leave behind.

Each rule mirrors a test in github.com/embeddings-benchmark/results (``tests/``,
``.github/workflows/check_file_sizes.yml``): folder naming and revision match
(test_correct_folder_structure, test_that_revision_match), revision form
(test_revision_is_specified_for_new_additions), an organisation in the name
(test_organization_is_specified_for_new_additions), file name = ``task_name``
(test_task_name_matches_filename), one revision per task (test_duplicate_results), files
under 10 MB, the model in mteb's registry (test_model_implementation), no removed split,
subset or language (test_no_splits/languages_are_removed) and main scores within 0.001
(test_results_diff). The checks are pure; the caller gathers the inputs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from kit.errors import ExitCode
from kit.publish.repomerge import DRIFT_LIMIT, Drift, subsets
from kit.runfolder import MODEL_META, NO_REVISION, results_dir

MAX_FILE_BYTES = 10 * 1024 * 1024
_SHA1 = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class RuleCheck:
    """One rule on one file: ``pass``, ``fail``, ``allowed`` (drift, by request) or ``note``."""

    rule: str
    file: str
    status: str
    reason: str
    code: ExitCode = ExitCode.EXPORT_RULES

    @property
    def failed(self) -> bool:
        return self.status == "fail"


@dataclass(frozen=True)
class Layout:
    """What the model's folder in the repository holds after the export.

    ``folder``: ``results/<org__name>/<revision>``; ``files``: that folder's files (name ->
    bytes) after the export; ``other_revisions``: revision folder -> its task file names;
    ``old``: the repository's earlier bytes of the files the export changes; ``drift``: task
    file -> replaced main scores.
    """

    folder: PurePosixPath
    meta: Mapping[str, Any]
    files: Mapping[str, bytes]
    other_revisions: Mapping[str, Iterable[str]]
    old: Mapping[str, bytes]
    parsed: Mapping[str, Any]
    old_parsed: Mapping[str, Any]
    drift: Mapping[str, tuple[Drift, ...]]


def _ok(rule: str, file: str, reason: str) -> RuleCheck:
    return RuleCheck(rule, file, "pass", reason)


def _bad(rule: str, file: str, reason: str, code: ExitCode = ExitCode.EXPORT_RULES) -> RuleCheck:
    return RuleCheck(rule, file, "fail", reason, code)


def naming(layout: Layout) -> list[RuleCheck]:
    """results/<name, '/'->'__', ' '->'_'>/<meta revision>, as the repository derives it."""
    where = (layout.folder / MODEL_META).as_posix()
    name, rev = layout.meta.get("name"), layout.meta.get("revision")
    if not isinstance(name, str) or not isinstance(rev, str):
        return [_bad("naming", where, "model_meta.json lacks a name or revision string")]
    expected = results_dir(name, rev)
    if expected != layout.folder:
        return [_bad("naming", where, f"{name}@{rev} belongs in {expected}")]
    return [_ok("naming", where, f"{expected} matches model_meta.json's name and revision")]


def revision_form(layout: Layout) -> list[RuleCheck]:
    """A 40-hex commit, or one character (an API model's version); never a placeholder."""
    rev = str(layout.meta.get("revision"))
    where = (layout.folder / MODEL_META).as_posix()
    if _SHA1.match(rev) or len(rev) == 1:
        return [_ok("revision", where, f"{rev} is a 40-hex commit or a one-character version")]
    return [
        _bad(
            "revision",
            where,
            f"{rev!r} is not a 40-hex commit; new results may not use {NO_REVISION} "
            "or external (only listed legacy folders do)",
        )
    ]


def organisation(layout: Layout) -> list[RuleCheck]:
    name = str(layout.meta.get("name"))
    where = (layout.folder / MODEL_META).as_posix()
    if "/" in name:
        return [_ok("organisation", where, f"{name} names its organisation")]
    return [_bad("organisation", where, f"{name} has no organisation (org/name)")]


def _task_files(layout: Layout) -> list[str]:
    return sorted(n for n in layout.files if n.endswith(".json") and n != MODEL_META)


def task_names(layout: Layout) -> list[RuleCheck]:
    out = []
    for name in _task_files(layout):
        data = layout.parsed.get(name)
        task = (
            data.get("task_name") or data.get("mteb_dataset_name")
            if isinstance(data, dict)
            else None
        )
        where = (layout.folder / name).as_posix()
        if task == name[: -len(".json")]:
            out.append(_ok("task name", where, f"task_name is {task}"))
        else:
            out.append(_bad("task name", where, f"file name {name} but task_name {task!r}"))
    return out


def one_revision(layout: Layout) -> list[RuleCheck]:
    out = []
    for name in _task_files(layout):
        where = (layout.folder / name).as_posix()
        also = sorted(r for r, names in layout.other_revisions.items() if name in set(names))
        if also:
            out.append(
                _bad("one revision", where, f"the model also has {name} under {', '.join(also)}")
            )
        else:
            out.append(_ok("one revision", where, "no other revision of the model has this task"))
    return out


def sizes(layout: Layout) -> list[RuleCheck]:
    out = []
    for name, data in sorted(layout.files.items()):
        where = (layout.folder / name).as_posix()
        if len(data) > MAX_FILE_BYTES:
            out.append(_bad("size", where, f"{len(data)} bytes, over the 10 MB limit"))
        else:
            out.append(_ok("size", where, f"{len(data)} bytes"))
    return out


def registry(layout: Layout, registered: bool, new_model_entry: bool) -> list[RuleCheck]:
    """The CI wants the model in mteb; a new model passes once mteb merged its ModelMeta."""
    name = str(layout.meta.get("name"))
    where = (layout.folder / MODEL_META).as_posix()
    if registered:
        return [_ok("model in mteb", where, f"{name} is in mteb's model registry")]
    if new_model_entry:
        return [
            RuleCheck(
                "model in mteb",
                where,
                "note",
                f"{name} is not in mteb's registry: open the pull request to mteb adding the "
                "bundle's mteb_model_meta.py first; the results CI fails until it is merged",
            )
        ]
    return [_bad("model in mteb", where, f"{name} is not in mteb's model registry")]


def _languages(result: Any) -> dict[tuple[str, str], set[str]]:
    return {
        key: {str(x) for x in entry.get("languages") or [] if isinstance(x, str)}
        for key, entry in subsets(result).items()
    }


def nothing_removed(layout: Layout) -> list[RuleCheck]:
    out = []
    for name in sorted(layout.old):
        if name not in layout.old_parsed:
            continue
        where = (layout.folder / name).as_posix()
        before, after = _languages(layout.old_parsed[name]), _languages(layout.parsed.get(name))
        gone = sorted(f"{s}/{sub}" for s, sub in before if (s, sub) not in after)
        lost = sorted(
            f"{s}/{sub}: {', '.join(sorted(langs - after[(s, sub)]))}"
            for (s, sub), langs in before.items()
            if (s, sub) in after and langs - after[(s, sub)]
        )
        if gone:
            out.append(_bad("nothing removed", where, f"split/subset removed: {', '.join(gone)}"))
        elif lost:
            out.append(_bad("nothing removed", where, f"languages removed: {'; '.join(lost)}"))
        else:
            out.append(_ok("nothing removed", where, "every split, subset and language kept"))
    return out


def drift(layout: Layout, allow_drift: bool) -> list[RuleCheck]:
    out = []
    for name, moved in sorted(layout.drift.items()):
        where = (layout.folder / name).as_posix()
        for d in moved:
            against = f" against {d.against}" if d.against else ""
            what = f"{d.split}/{d.subset}: {d.old:.6f} -> {d.new:.6f} ({d.delta:+.6f}{against})"
            if not d.too_far:
                out.append(_ok("drift", where, f"{what}, within {DRIFT_LIMIT}"))
            elif allow_drift:
                out.append(RuleCheck("drift", where, "allowed", f"{what}, over {DRIFT_LIMIT}"))
            else:
                out.append(_bad("drift", where, f"{what}, over {DRIFT_LIMIT}", ExitCode.DRIFT))
    return out


def check_rules(
    layout: Layout, *, registered: bool, new_model_entry: bool, allow_drift: bool
) -> list[RuleCheck]:
    """Every rule, in the order above."""
    return [
        *naming(layout),
        *revision_form(layout),
        *organisation(layout),
        *task_names(layout),
        *one_revision(layout),
        *sizes(layout),
        *registry(layout, registered, new_model_entry),
        *nothing_removed(layout),
        *drift(layout, allow_drift),
    ]
