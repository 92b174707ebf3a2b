"""The strict JSON reader: every hostile document is a KitError with the caller's code."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from kit.bundle.jsonread import MAX_DEPTH, JsonRefused, loads_strict, parse, read_json_file
from kit.errors import ExitCode, KitError

HOSTILE = {
    "deep-array": (b"[" * 200_000 + b"]" * 200_000, "nested deeper"),
    "deep-object": (b'{"a":' * 5_000 + b"1" + b"}" * 5_000, "nested deeper"),
    "just-over-depth": (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "nested deeper"),
    "huge-int": (b'{"main_score": 1' + b"0" * 400 + b"}", "too large"),
    "int-digits-limit": (b"9" * 5000, "too large"),
    "huge-float": (b"1e999", "out of float range"),
    "duplicate-key": (b'{"name": "a", "name": "b"}', "duplicate key"),
    "nan": (b'{"main_score": NaN}', "NaN"),
    "infinity": (b"[-Infinity]", "Infinity"),
    "utf16": ('{"a": 1}'.encode("utf-16"), "not UTF-8"),
    "latin1": (b'{"a": "\xe9"}', "not UTF-8"),
    "bom": (b'\xef\xbb\xbf{"a": 1}', "byte order mark"),
    "truncated": (b'{"a": [1, 2', "not valid JSON"),
    "lone-surrogate-ok": (b'"\\ud800"', None),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_documents_are_refused(case: str) -> None:
    """Each refused with its reason (how fast: benchmarks/hostile_json.py, target < 2 s)."""
    data, needle = HOSTILE[case]
    if needle is None:
        assert parse(data) == "\ud800"  # a lone surrogate escape is valid JSON: kept as is
        return
    with pytest.raises(KitError) as e:
        loads_strict(data, "run.json")
    assert e.value.code == ExitCode.SCHEMA
    assert e.value.message.startswith("run.json: ") and needle in e.value.message
    assert "\n" not in e.value.message


def test_nan_allowed_only_where_asked() -> None:
    assert math.isnan(parse(b'{"x": NaN}', allow_nan=True)["x"])
    with pytest.raises(JsonRefused):
        parse(b'{"x": NaN}')


def test_at_the_limits_is_accepted() -> None:
    depth = MAX_DEPTH
    assert parse(b"[" * depth + b"]" * depth) is not None
    assert parse(b"1" + b"0" * 307) == 10**307
    assert parse(b'{"a": {"a": 1}}') == {"a": {"a": 1}}


def test_user_files_missing_and_refused(tmp_path: Path) -> None:
    with pytest.raises(KitError) as e:
        read_json_file(tmp_path / "nope.json")
    assert e.value.code == ExitCode.NOT_FOUND
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"a": 1, "a": 2}')
    with pytest.raises(KitError) as e:
        read_json_file(bad)
    assert e.value.code == ExitCode.USAGE and "duplicate key" in e.value.message
