"""kit.publish.reporules and repomerge on in-memory bytes: the results repository's CI rules,
what a merge keeps, and model_meta.json's canonical form (no repository, no mteb run)."""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any

import pytest

from kit.errors import ExitCode, KitError
from kit.publish.repomerge import (
    DRIFT_LIMIT,
    Drift,
    canonical_meta,
    drifts,
    merge_model_meta,
    merge_run_settings,
    merge_task_file,
)
from kit.publish.reporules import MAX_FILE_BYTES, Layout, check_rules

NAME, REV = "org/model", "a" * 40
FOLDER = PurePosixPath("results/org__model") / REV


def result(task: str, *subsets: tuple[str, str, float, list[str]]) -> dict[str, Any]:
    """An mteb result file: (split, hf_subset, main_score, languages) per subset."""
    scores: dict[str, list[dict[str, Any]]] = {}
    for split, subset, score, langs in subsets:
        scores.setdefault(split, []).append(
            {"hf_subset": subset, "main_score": score, "languages": langs}
        )
    return {"task_name": task, "scores": scores}


def layout(
    files: dict[str, Any] | None = None,
    *,
    meta: dict[str, Any] | None = None,
    old: dict[str, Any] | None = None,
    other_revisions: dict[str, list[str]] | None = None,
    raw: dict[str, bytes] | None = None,
) -> Layout:
    """The model folder after an export: ``files`` (parsed JSON) plus ``raw`` bytes."""
    meta = meta if meta is not None else {"name": NAME, "revision": REV}
    parsed = {"model_meta.json": meta, **(files or {})}
    data = {n: json.dumps(v).encode() for n, v in parsed.items()} | (raw or {})
    old = old or {}
    return Layout(
        folder=FOLDER,
        meta=meta,
        files=data,
        other_revisions=other_revisions or {},
        old={n: json.dumps(v).encode() for n, v in old.items()},
        parsed=parsed,
        old_parsed=old,
        drift={n: drifts(old[n], parsed[n]) for n in old if n in parsed},
    )


def statuses(lay: Layout, **kw: bool) -> dict[tuple[str, str], str]:
    args = {"registered": True, "new_model_entry": False, "allow_drift": False} | kw
    return {(c.rule, c.file.rsplit("/", 1)[-1]): c.status for c in check_rules(lay, **args)}


STS = result("STS12", ("test", "default", 0.5, ["eng-Latn"]))


def test_an_honest_export_passes_every_rule_in_order() -> None:
    checks = check_rules(
        layout({"STS12.json": STS}), registered=True, new_model_entry=False, allow_drift=False
    )
    assert [c.rule for c in checks] == [
        "naming",
        "revision",
        "organisation",
        "task name",
        "one revision",
        "size",
        "size",
        "model in mteb",
    ]
    assert all(c.status == "pass" for c in checks), checks


@pytest.mark.parametrize(
    ("meta", "rule"),
    [
        ({"name": "org/other", "revision": REV}, "naming"),
        ({"name": NAME, "revision": "no_revision_available"}, "revision"),
        ({"name": NAME, "revision": "main"}, "revision"),
        ({"name": NAME}, "naming"),
    ],
)
def test_folder_and_revision_rules(meta: dict[str, Any], rule: str) -> None:
    assert statuses(layout({"STS12.json": STS}, meta=meta))[(rule, "model_meta.json")] == "fail"


def test_a_model_without_organisation_fails() -> None:
    lay = Layout(**{**layout().__dict__, "folder": PurePosixPath("results/model") / REV})
    got = statuses(Layout(**{**lay.__dict__, "meta": {"name": "model", "revision": REV}}))
    assert got[("organisation", "model_meta.json")] == "fail"
    assert got[("naming", "model_meta.json")] == "pass"  # results/model/<rev> is its folder


def test_one_character_revision_is_an_api_version() -> None:
    lay = layout(meta={"name": NAME, "revision": "1"})
    lay = Layout(**{**lay.__dict__, "folder": PurePosixPath("results/org__model/1")})
    assert statuses(lay)[("revision", "model_meta.json")] == "pass"


def test_task_name_must_match_the_file_name() -> None:
    got = statuses(layout({"STS13.json": STS, "STS12.json": STS}))
    assert got[("task name", "STS13.json")] == "fail"
    assert got[("task name", "STS12.json")] == "pass"


def test_a_task_under_another_revision_fails() -> None:
    lay = layout({"STS12.json": STS}, other_revisions={"b" * 40: ["STS12.json", "X.json"]})
    assert statuses(lay)[("one revision", "STS12.json")] == "fail"


def test_size_limit_is_ten_megabytes() -> None:
    big = {"BIG.json": b"x" * (MAX_FILE_BYTES + 1), "OK.json": b"x" * MAX_FILE_BYTES}
    got = statuses(layout(raw=big))
    assert got[("size", "BIG.json")] == "fail" and got[("size", "OK.json")] == "pass"


def test_registry_rule_notes_a_new_model() -> None:
    lay = layout({"STS12.json": STS})
    assert statuses(lay, registered=False)[("model in mteb", "model_meta.json")] == "fail"
    new = statuses(lay, registered=False, new_model_entry=True)
    assert new[("model in mteb", "model_meta.json")] == "note"


def test_removed_subset_or_language_fails() -> None:
    two = result("STS12", ("test", "default", 0.5, ["eng-Latn"]), ("test", "fr", 0.4, ["fra-Latn"]))
    gone = statuses(layout({"STS12.json": STS}, old={"STS12.json": two}))
    assert gone[("nothing removed", "STS12.json")] == "fail"
    fewer = result("STS12", ("test", "default", 0.5, []))
    lost = statuses(layout({"STS12.json": fewer}, old={"STS12.json": STS}))
    assert lost[("nothing removed", "STS12.json")] == "fail"
    kept = statuses(layout({"STS12.json": STS}, old={"STS12.json": STS}))
    assert kept[("nothing removed", "STS12.json")] == "pass"


def test_drift_beyond_the_epsilon_is_refused_unless_allowed() -> None:
    moved = result("STS12", ("test", "default", 0.5 + 2 * DRIFT_LIMIT, ["eng-Latn"]))
    lay = layout({"STS12.json": moved}, old={"STS12.json": STS})
    checks = check_rules(lay, registered=True, new_model_entry=False, allow_drift=False)
    (bad,) = [c for c in checks if c.rule == "drift"]
    assert bad.status == "fail" and bad.code == ExitCode.DRIFT and "+0.002000" in bad.reason
    allowed = statuses(lay, allow_drift=True)
    assert allowed[("drift", "STS12.json")] == "allowed"
    near = result("STS12", ("test", "default", 0.5 + DRIFT_LIMIT / 2, ["eng-Latn"]))
    within = statuses(layout({"STS12.json": near}, old={"STS12.json": STS}))
    assert within[("drift", "STS12.json")] == "pass"


def test_drifts_read_the_repository_scale() -> None:
    """Main scores above 1 are percentages in old files: compared on the 0-1 scale."""
    old = result("T", ("test", "default", 50.0, []), ("dev", "default", 0.7, []))
    new = result("T", ("test", "default", 0.5004, []), ("test", "x", 0.1, []))
    (d,) = drifts(old, new)
    assert (d.split, d.subset, d.old, d.new) == ("test", "default", 0.5, 0.5004)
    assert not d.too_far and Drift("t", "s", 0.5, 0.5 + 1.5 * DRIFT_LIMIT).too_far


def test_merge_task_file_without_mteb_when_nothing_is_new() -> None:
    new = json.dumps(STS).encode()
    assert merge_task_file(None, new, "STS12.json").action == "written"
    same = merge_task_file(new, new, "STS12.json")
    assert (same.action, same.data) == ("unchanged", new)
    already = json.dumps({**STS, "evaluation_time": 9.0}).encode()  # same scores, other bytes
    kept = merge_task_file(already, new, "STS12.json")  # no second sum of evaluation times
    assert (kept.action, kept.data, kept.drift) == ("unchanged", already, ())
    near = result("STS12", ("test", "default", 0.5 + DRIFT_LIMIT / 2, ["eng-Latn"]))
    older = json.dumps(near).encode()  # an older run within the bound: left alone, as mteb's submit
    assert merge_task_file(older, new, "STS12.json") == kept.__class__(older, "unchanged")
    with pytest.raises(KitError) as e:
        merge_task_file(b'{"scores": ', new, "STS12.json")
    assert e.value.code == ExitCode.EXPORT_RULES and "in the repository" in e.value.message


def test_run_settings_unchanged_or_written() -> None:
    line = b'{"task_name": "STS12", "split": "test", "hf_subset": "default"}\n'
    assert merge_run_settings(None, line).action == "written"
    assert merge_run_settings(line, line).action == "unchanged"


def test_model_meta_is_canonical_and_other_content_needs_replace() -> None:
    a = json.dumps({"name": NAME, "training_datasets": ["b", "a"], "n": 1}).encode()
    b = json.dumps({"name": NAME, "training_datasets": ["a", "b"], "n": 1}, indent=1).encode()
    assert canonical_meta(a) == canonical_meta(b)
    assert json.loads(canonical_meta(a))["training_datasets"] == ["a", "b"]
    assert canonical_meta(a).startswith(b'{\n    "name"')  # indent=4, as mteb writes it
    assert merge_model_meta(None, a, False, "m").action == "written"
    assert merge_model_meta(b, a, False, "m").action == "unchanged"
    other = json.dumps({"name": NAME, "training_datasets": ["a"], "n": 2}).encode()
    refused = merge_model_meta(other, a, False, "results/x/model_meta.json")  # a rule row (7)
    assert (refused.action, refused.data) == ("refused", other)
    assert "results/x/model_meta.json exists with other content" in refused.reason
    assert "(training_datasets differs)" in refused.reason
    replaced = merge_model_meta(other, a, True, "m")
    assert (replaced.action, replaced.data) == ("replaced", canonical_meta(a))
