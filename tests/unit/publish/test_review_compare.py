"""kit.publish.review.compare: a pull request's file against what a bundle yields (pure)."""

from __future__ import annotations

import json

from kit.publish.review.compare import ABSENT, compare_file, first_difference

PATH = "results/org__m/0123/STS12.json"


def _task(scores: dict[tuple[str, str], float], **top: object) -> bytes:
    out: dict[str, list] = {}
    for (split, subset), main in scores.items():
        entry = {"cosine_spearman": main, "main_score": main, "hf_subset": subset}
        entry |= {"languages": ["eng-Latn"]}
        out.setdefault(split, []).append(entry)
    doc = {"dataset_revision": "abc", "task_name": "STS12", "mteb_version": "2.26.24"} | top
    return json.dumps(doc | {"scores": out}, indent=2).encode()


ONE = {("test", "default"): 0.8123456789}
TWO = {("test", "default"): 0.8123456789, ("test", "en-de"): 0.7}


def test_equal_files_are_backed_even_when_formatted_otherwise() -> None:
    ours = _task(TWO)
    pr = json.dumps(json.loads(ours)).encode()  # other whitespace, same values
    found = compare_file(PATH, pr, ours)
    assert found.verdict == "backed" and found.difference is None
    assert [(r.split, r.subset, r.status) for r in found.rows] == [
        ("test", "default", "equal"),
        ("test", "en-de", "equal"),
    ]


def test_a_score_moved_by_1e_4_names_its_key_path_and_both_values() -> None:
    moved = {("test", "default"): 0.8123456789 + 1e-4, ("test", "en-de"): 0.7}
    found = compare_file(PATH, _task(moved), _task(TWO))
    assert found.verdict == "differs"
    diff = found.difference
    assert diff is not None
    assert diff.where == (PATH, "STS12", "test", "default", "cosine_spearman")
    assert diff.pr == 0.8123456789 + 1e-4 and diff.bundle == 0.8123456789
    assert "pull request 0.8124456789" in diff.text() and "bundle 0.8123456789" in diff.text()


def test_exact_comparison_no_tolerance() -> None:
    assert first_difference(0.1 + 0.2, 0.3, ("x",)) is not None  # equal floats only
    assert first_difference(float("nan"), float("nan"), ("x",)) is None
    assert first_difference(1, 1.0, ("x",)) is None
    assert first_difference(True, 1, ("x",)) is not None  # a bool is not a number here


def test_a_removed_subset_is_named() -> None:
    found = compare_file(PATH, _task(ONE), _task(TWO))
    assert found.verdict == "removed" and found.removed == ("test/en-de",)
    assert [r.status for r in found.rows] == ["equal", "removed"]


def test_a_subset_no_bundle_has_differs() -> None:
    found = compare_file(PATH, _task(TWO), _task(ONE))
    assert found.verdict == "differs"
    assert found.difference is not None
    assert found.difference.where == (PATH, "STS12", "test", "en-de")
    assert found.difference.bundle == ABSENT


def test_other_keys_and_duplicate_entries_differ() -> None:
    found = compare_file(PATH, _task(ONE, dataset_revision="other"), _task(ONE))
    assert found.difference is not None
    assert found.difference.where == (PATH, "STS12", "dataset_revision")
    doubled = json.loads(_task(ONE))
    doubled["scores"]["test"].append(doubled["scores"]["test"][0])
    found = compare_file(PATH, json.dumps(doubled).encode(), _task(ONE))
    assert found.difference is not None and "scores entries" in found.difference.where


def test_not_json_differs() -> None:
    found = compare_file(PATH, b"{not json", _task(ONE))
    assert found.verdict == "differs"


def test_model_meta_is_compared_canonically() -> None:
    path = "results/org__m/0123/model_meta.json"
    ours = json.dumps({"name": "org/m", "training_datasets": ["b", "a"]}, indent=4).encode()
    pr = json.dumps({"training_datasets": ["a", "b"], "name": "org/m"}).encode()
    assert compare_file(path, pr, ours).verdict == "backed"
    other = json.dumps({"name": "org/m", "training_datasets": ["a", "c"]}).encode()
    found = compare_file(path, other, ours)
    assert found.difference is not None
    assert found.difference.where[:2] == (path, "training_datasets")


def test_run_settings_line_by_line() -> None:
    path = "results/org__m/0123/run_settings.jsonl"
    ours = b'{"task": "A", "batch_size": 32}\n{"task": "B", "batch_size": 32}\n'
    assert compare_file(path, ours, ours).verdict == "backed"
    pr = b'{"task": "A", "batch_size": 32}\n{"task": "B", "batch_size": 7}\n'
    found = compare_file(path, pr, ours)
    assert found.difference is not None and found.difference.where == (path, "line 2")
    found = compare_file(path, ours.splitlines(keepends=True)[0], ours)
    assert found.difference is not None and found.difference.pr == ABSENT
