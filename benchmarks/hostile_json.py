"""How fast the strict JSON reader refuses hostile documents (target: each under 2 s).

Deep nesting, huge integers and floats, duplicate keys, NaN and Infinity, other encodings, a
byte order mark and a truncated document, each through ``kit.bundle.jsonread.loads_strict`` as
verify reads a bundle's records; then hostile predictions members through
``kit.bundle.predictions.read_predictions`` as ``verify --recompute`` and ``compare`` read them
(a 57 MiB valid file with NaN in its last score: the worst case, a full parse; a gzip bomb;
deep nesting; wrong types). tests/unit/bundle/test_jsonread.py and test_predictions.py check
that each is refused and why; this measures the time. Exit 1 when a document misses the target.

    python benchmarks/hostile_json.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time

from kit.bundle.jsonread import MAX_DEPTH, loads_strict
from kit.bundle.predictions import MAX_JSON_BYTES, read_predictions
from kit.errors import KitError

TARGET = 2.0  # seconds, each document
DOCUMENTS = {
    "deep-array": b"[" * 200_000 + b"]" * 200_000,
    "deep-object": b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
    "just-over-depth": b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1),
    "huge-int": b'{"main_score": 1' + b"0" * 400 + b"}",
    "int-digits-limit": b"9" * 5000,
    "many-digits": b"9" * 5_000_000,
    "huge-float": b"1e999",
    "duplicate-key": b'{"name": "a", "name": "b"}',
    "many-duplicate-keys": b"{" + b",".join(b'"k":%d' % i for i in range(100_000)) + b"}",
    "nan": b'{"main_score": NaN}',
    "infinity": b"[-Infinity]",
    "utf16": '{"a": 1}'.encode("utf-16"),
    "latin1": b'{"a": "\xe9"}',
    "bom": b'\xef\xbb\xbf{"a": 1}',
    "truncated": b'{"a": [1, 2',
}


def _retrieval_with_nan_at_the_end() -> bytes:
    """~57 MiB of retrieval scores (under the 64 MiB bound), NaN as the very last score."""
    docs = "{" + ", ".join(f'"d{i}": 0.123456789' for i in range(100_000)) + "}"
    body = ", ".join(f'"q{j}": {docs}' for j in range(26))
    meta = json.dumps({"model_name": "m", "revision": None})
    text = '{"mteb_model_meta": ' + meta + ', "default": {"test": {' + body + "}}}"
    text = text[: text.rindex("0.123456789")] + "NaN}}}}"
    return gzip.compress(text.encode(), 1, mtime=0)


def _predictions() -> dict[str, tuple[bytes, str]]:
    meta = '{"mteb_model_meta": {"model_name": "m", "revision": null}, "default": {"test": '
    return {
        "pred-nan-at-end-57MiB": (_retrieval_with_nan_at_the_end(), "retrieval"),
        "pred-gzip-bomb": (gzip.compress(b" " * (MAX_JSON_BYTES + 1), 1, mtime=0), "sts"),
        "pred-deep": (gzip.compress(b"[" * 200_000 + b"]" * 200_000), "retrieval"),
        "pred-bool-scores": (
            gzip.compress((meta + '{"q": {"d": true}}}}').encode()),
            "retrieval",
        ),
        "pred-inf-label": (gzip.compress((meta + "[[1e999]]}}").encode()), "classification"),
    }


def refuse_predictions(data: bytes, kind: str) -> tuple[float, str]:
    """CPU seconds to decide on a predictions member, and the outcome (with the wall time).

    CPU time, not wall time, is held to the target here: the large cases take over a second
    of CPU, and on a shared, loaded machine their wall time mostly measures the wait for a
    core (on an idle one the two are the same).
    """
    start, wall = time.process_time(), time.perf_counter()
    try:
        read_predictions(data, kind)
        outcome = "accepted"
    except KitError as e:
        outcome = f"exit {int(e.code)} ({e.message[:50]})"
    cpu, wall = time.process_time() - start, time.perf_counter() - wall
    return cpu, f"{outcome}; wall {wall:.3f} s"


def refuse(data: bytes) -> tuple[float, str]:
    """Seconds to decide on ``data``, and the outcome."""
    start = time.perf_counter()
    try:
        loads_strict(data, "run.json")
        outcome = "accepted"
    except KitError as e:
        outcome = f"exit {int(e.code)} ({e.message[:50]})"
    return time.perf_counter() - start, outcome


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    missed = []
    for name, data in DOCUMENTS.items():
        runs = [refuse(data) for _ in range(args.repeats)]
        slowest = max(seconds for seconds, _ in runs)
        print(f"{name:<20} {slowest:7.3f} s (slowest of {args.repeats})  {runs[0][1]}")
        if slowest >= TARGET:
            missed.append(name)
    for name, (data, kind) in _predictions().items():
        runs = [refuse_predictions(data, kind) for _ in range(args.repeats)]
        slowest = max(seconds for seconds, _ in runs)
        print(f"{name:<20} {slowest:7.3f} s CPU (slowest of {args.repeats})  {runs[0][1]}")
        if slowest >= TARGET:
            missed.append(name)
    print(f"target < {TARGET:g} s each: {'missed by ' + ', '.join(missed) if missed else 'met'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
