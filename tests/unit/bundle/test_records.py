"""A bundle's parsed view: each member parsed at most once, its refusal kept as parse gives it."""

from __future__ import annotations

from typing import Any

import pytest

from kit.bundle import jsonread
from kit.bundle.jsonread import JsonRefused, parse
from kit.bundle.records import BundleRecords

MEMBERS = {
    "run.json": b'{"a": 1}',
    "environment.json": b'{"b": [1, 2]}',
    "results/m/r/T.json": b'{"task_name": "T", "x": NaN}',
    "results/m/r/model_meta.json": b'{"name": "m", "name": "n"}',
    "results/m/r/run_settings.jsonl": b'{"task": "T"}\n\n  \n{"task": NaN}\n[1,\n',
}


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[bytes | str]:
    """Every document the strict reader parses from now on."""
    seen: list[bytes | str] = []
    real = jsonread._parse

    def counting(data: bytes | str, *args: Any) -> Any:
        seen.append(data)
        return real(data, *args)

    monkeypatch.setattr(jsonread, "_parse", counting)
    return seen


def test_each_member_is_parsed_once_however_often_it_is_read(parses: list[bytes | str]) -> None:
    records = BundleRecords(MEMBERS, {"files": {}})
    assert parses == []  # nothing is parsed before a check asks
    for _ in range(3):
        assert records.run == {"a": 1} and records.environment == {"b": [1, 2]}
        assert records.json("results/m/r/T.json", allow_nan=True)["task_name"] == "T"
        assert len(records.lines("results/m/r/run_settings.jsonl")) == 3
    assert sorted(map(bytes, parses)) == sorted(  # type: ignore[arg-type]
        [
            MEMBERS["run.json"],
            MEMBERS["environment.json"],
            MEMBERS["results/m/r/T.json"],
            b'{"task": "T"}',
            b'{"task": NaN}',
            b"[1,",
        ]
    )


@pytest.mark.parametrize("name", sorted(n for n in MEMBERS if n.endswith(".json")))
@pytest.mark.parametrize("allow_nan", [False, True])
def test_a_record_reads_as_parse_reads_it(name: str, allow_nan: bool) -> None:
    records = BundleRecords(MEMBERS, {})
    try:
        want: Any = ("value", repr(parse(MEMBERS[name], allow_nan=allow_nan)))
    except JsonRefused as e:
        want = ("refused", str(e))
    for _ in range(2):  # the kept refusal is raised again, with the same reason
        try:
            got: Any = ("value", repr(records.json(name, allow_nan=allow_nan)))
        except JsonRefused as e:
            got = ("refused", str(e))
        assert got == want


def test_lines_keep_numbers_and_refusals() -> None:
    lines = BundleRecords(MEMBERS, {}).lines("results/m/r/run_settings.jsonl")
    assert [i for i, _ in lines] == [1, 4, 5]
    assert lines[0][1].get() == {"task": "T"}
    with pytest.raises(JsonRefused, match="NaN is not a JSON number"):
        lines[1][1].get()
    with pytest.raises(JsonRefused, match="not valid JSON"):
        lines[2][1].get()


def test_missing_members_are_key_errors_and_members_read_only() -> None:
    records = BundleRecords(MEMBERS, {})
    with pytest.raises(KeyError):
        records.json("nope.json")
    with pytest.raises(KeyError):
        records.lines("nope.jsonl")
    with pytest.raises(TypeError):
        records.members["run.json"] = b"{}"  # type: ignore[index]
