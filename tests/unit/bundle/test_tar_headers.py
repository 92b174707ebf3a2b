"""Tar extended headers are bounded before the standard library parses them (class 4).

Python's tarfile before 3.13 parses long pax numbers in quadratic time (CVE-2024-6232); a
6.5 KB bundle cost minutes. Each crafted archive here is refused or accepted as it should be;
how long each takes (target: under 2 s) is measured by benchmarks/verify_worst_case.py.
"""

from __future__ import annotations

import pytest

from benchmarks.verify_worst_case import CASES, member, pax, pax_record, run_case, targz
from kit.bundle.archive import UnsafeArchive, parse_bundle_archive
from kit.errors import ExitCode


@pytest.mark.parametrize("case", sorted(CASES))
def test_crafted_archives_are_decided(case: str) -> None:
    _seconds, outcome = run_case(case)
    assert outcome.startswith(("exit 10", "exit 12")), outcome


def test_cve_2024_6232_payload_is_refused_before_parsing() -> None:
    with pytest.raises(UnsafeArchive) as e:
        parse_bundle_archive(targz(pax(b"1" * 60_000), member("a", b"x")))
    assert e.value.code == ExitCode.UNSAFE_ARCHIVE and "pax" in e.value.message


@pytest.mark.parametrize(
    "payload",
    [b"12 path=ab\n" + b"x", b"99 path=ab\n", b"path=ab\n", b"11 pathab\nx"],
)
def test_malformed_pax_records_are_refused(payload: bytes) -> None:
    with pytest.raises(UnsafeArchive, match="pax"):
        parse_bundle_archive(targz(pax(payload), member("a", b"x")))


def test_honest_pax_headers_still_read() -> None:
    long_name = "results/" + "x" * 150 + "/Tâche.json"
    data = targz(pax(pax_record("path", long_name.encode())), member("ignored", b"{}"))
    assert parse_bundle_archive(data) == {long_name: b"{}"}
