"""The strict JSON reader: every hostile document is a KitError with the caller's code."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kit.bundle.jsonread import (
    MAX_DEPTH,
    JsonRefused,
    loads_strict,
    parse,
    parse_once,
    read_json_file,
)
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


def _outcome(read: Callable[[], Any]) -> tuple[str, Any]:
    try:
        value = read()
    except JsonRefused as e:
        return "refused", str(e)
    return "value", json.dumps(value, sort_keys=True)  # NaN != NaN: compare the text


# Documents where the order of NaN and another refusal decides what a parse says.
_ORDER = [
    b'{"x": NaN, "x": 1}',  # NaN read before the duplicate key is seen
    b'{"x": 1, "x": NaN}',  # NaN read first too: the duplicate is found when the object closes
    b"[1e999, NaN]",  # the out-of-range number first
    b"[NaN, 1e999]",
    b"[NaN, }",
    b"[-Infinity, Infinity]",
    b"[" * (MAX_DEPTH + 1) + b"NaN" + b"]" * (MAX_DEPTH + 1),  # too deep, NaN inside
    b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1) + b"NaN",
    b'"\\ud800" NaN',
    b'{"a": [NaN]} x',
]


@pytest.mark.parametrize("data", [d for d, _ in HOSTILE.values()] + _ORDER)
def test_one_parse_reads_as_parse_with_and_without_nan(data: bytes) -> None:
    once = parse_once(data)
    for allow_nan in (False, True):
        want = _outcome(lambda: parse(data, allow_nan=allow_nan))  # noqa: B023
        assert _outcome(lambda: once.get(allow_nan=allow_nan)) == want  # noqa: B023


def test_one_parse_matches_parse_on_random_documents() -> None:
    """Random token soups: every outcome (value or reason) with and without NaN is parse's."""
    rng = random.Random(11)
    tokens = ['{"a": ', '{"a": 1, "a": 2}', "NaN", "-Infinity", "1e999", "[", "]", "{", "}",
              ", ", "1", '"s"', "null", "true", ":", '"k": ', "9" * 400, "\ufeff"]  # fmt: skip
    for _ in range(3000):
        text = "".join(rng.choice(tokens) for _ in range(rng.randrange(1, 9)))
        data = text.encode("utf-8")
        once = parse_once(data)
        for allow_nan in (False, True):
            assert _outcome(lambda: once.get(allow_nan=allow_nan)) == _outcome(  # noqa: B023
                lambda: parse(data, allow_nan=allow_nan)  # noqa: B023
            ), data
