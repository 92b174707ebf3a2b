"""The slowest verify over a corpus of crafted, hostile bundles (target: each under 2 s).

The CVE payload must be refused before tarfile parses it (target: under 0.5 s). Exit 1 when a
case misses its target (tests/unit/bundle/test_tar_headers.py checks the outcomes, not times).

Every case is a gzip'd tar built by hand: pax headers with long numbers (CVE-2024-6232:
tarfile before 3.13 parses them in quadratic time), many pax records, many pax headers,
GNU long names, deep JSON, huge integers, duplicate keys, and the largest member count the
limits allow. Each is read and verified in-process, as `repro-kit verify` does.

    python benchmarks/verify_worst_case.py [--cases NAME,...]
"""

from __future__ import annotations

import argparse
import gzip
import resource
import sys
import tarfile
import time
from collections.abc import Callable

from kit.bundle.archive import MAX_EXT_HEADER_BYTES, parse_bundle_archive
from kit.errors import KitError
from kit.signing.policy import AcceptUnsigned
from kit.verify.checks import verify_members

BLOCK = tarfile.BLOCKSIZE


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % BLOCK)


def header(name: str, size: int, kind: bytes = tarfile.REGTYPE) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.mtime, info.mode = size, kind, 946684800, 0o644
    return info.tobuf(tarfile.USTAR_FORMAT)


def member(name: str, data: bytes) -> bytes:
    return header(name, len(data)) + _pad(data)


def pax(payload: bytes) -> bytes:
    return header("././@PaxHeader", len(payload), tarfile.XHDTYPE) + _pad(payload)


def pax_record(key: str, value: bytes) -> bytes:
    body = f" {key}=".encode() + value + b"\n"
    n = len(body) + 1
    while len(str(n)) + len(body) != n:
        n += 1
    return str(n).encode() + body


def targz(*parts: bytes) -> bytes:
    return gzip.compress(b"".join(parts) + b"\0" * (2 * BLOCK), 9)


def _manifest(body: bytes) -> bytes:
    return targz(member("manifest.json", body), member("run.json", b"{}"))


CASES: dict[str, Callable[[], bytes]] = {
    # the CVE payload: one pax header of digits (refused by size before tarfile sees it)
    "pax-60k-digits": lambda: targz(pax(b"1" * 60_000), member("a", b"x")),
    # the same, within the size bound: refused for its 33+ digit run
    "pax-16k-digits": lambda: targz(pax(b"1" * MAX_EXT_HEADER_BYTES), member("a", b"x")),
    "pax-long-number-value": lambda: targz(pax(pax_record("size", b"9" * 5000)), member("a", b"x")),
    "pax-hdrcharset-digits": lambda: targz(
        pax(pax_record("comment", (b"1" * 32 + b" ") * 400)), member("a", b"x")
    ),
    "pax-many-records": lambda: targz(
        pax(b"".join(pax_record(f"k{i}", b"v") for i in range(1500))), member("a", b"x")
    ),
    "pax-many-headers": lambda: targz(
        *[
            pax(pax_record("comment", b"1" * 32 + b"x" * 900)) + member(f"f{i}", b"")
            for i in range(3000)
        ]
    ),
    "pax-chain": lambda: targz(
        *[pax(pax_record("comment", b"x" * 8000)) for _ in range(2000)], member("a", b"x")
    ),
    "gnu-longname-huge": lambda: targz(
        header("././@LongLink", 10_000_000, tarfile.GNUTYPE_LONGNAME) + b"a" * 10_000_000,
        member("a", b"x"),
    ),
    "json-deep": lambda: _manifest(b"[" * 200_000 + b"]" * 200_000),
    "json-huge-int": lambda: _manifest(b'{"format_version": 1' + b"0" * 4000 + b"}"),
    "json-duplicate-keys": lambda: _manifest(
        b"{" + b",".join(b'"k":%d' % i for i in range(100_000)) + b"}"
    ),
    "json-big-member": lambda: _manifest(b'["' + b"a" * 100_000_000 + b'"]'),
    "max-members": lambda: targz(*[member(f"results/f{i}.json", b"{}") for i in range(10_000)]),
    # the same count as the kit's own writer lays it out (deterministic, PAX, 50 folders)
    "max-members-kit-writer": lambda: _written(
        {f"results/m{i % 50}/task{i}.json": b"{}" for i in range(10_000)}
    ),
}
TARGET = 2.0  # seconds, each case
TARGETS = {"pax-60k-digits": 0.5}  # the CVE payload: refused before tarfile parses it


def _written(members: dict[str, bytes]) -> bytes:
    """The bytes of a bundle the kit's writer makes from ``members``."""
    import tempfile
    from pathlib import Path

    from kit.bundle.archive import write_deterministic_targz

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "b.tar.gz"
        write_deterministic_targz(members, path)
        return path.read_bytes()


def run_case(name: str) -> tuple[float, str]:
    data = CASES[name]()
    start = time.perf_counter()
    try:
        members = parse_bundle_archive(data)
        report, _ = verify_members(name, members, signature=AcceptUnsigned(None))
        outcome = f"exit {int(report.exit_code)}"
        if not report.ok:
            outcome += f" ({report.first_failure().reason[:60]})"
    except KitError as e:
        outcome = f"exit {int(e.code)} ({e.message[:60]})"
    return time.perf_counter() - start, outcome


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(CASES))
    args = ap.parse_args()
    worst, missed = ("", 0.0), []
    for name in args.cases.split(","):
        seconds, outcome = run_case(name)
        target = TARGETS.get(name, TARGET)
        print(f"{name:<24} {seconds:7.3f} s  (target < {target:g} s)  {outcome}")
        worst = max(worst, (name, seconds), key=lambda w: w[1])
        if seconds >= target:
            missed.append(name)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"slowest: {worst[0]} {worst[1]:.3f} s; peak RSS {rss:.0f} MiB")
    print(f"targets: {'missed by ' + ', '.join(missed) if missed else 'met'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
