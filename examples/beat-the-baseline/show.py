"""Print the key result of one step of run.sh from the JSON a kit command wrote.

Usage: ``python show.py KIND FILE``, KIND one of

- reproduce (verify --reference --json): per task score, published score, delta
- signed (verify --json): who signed, and that the bundle verifies
- review (review --json): the review's verdict and its file counts
- rerun (verify --rerun --json): per task claimed and re-run score, identical or not
- digest (a run folder's run.json): the model's content digest
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def reproduce(data: dict) -> list[str]:
    ref = data.get("reference") or {}
    out = [
        f"{r['task']}: {r['score']:.6f}, published {r['reference']:.6f}, "
        f"delta {r['delta']:+.6f} ({'reproduced' if r['ok'] else 'NOT reproduced'})"
        for r in ref.get("tasks", [])
        if r.get("reference") is not None
    ]
    return out or ["no task has a published score"]


def signed(data: dict) -> list[str]:
    who = data.get("signer") or {}
    names = ", ".join(who.get("principals") or []) or "the given key"
    state = "verifies" if data.get("ok") else f"FAILS (exit {data.get('exit_code')})"
    return [f"signed by {names} ({who.get('fingerprint')}); the bundle {state}"]


def review(data: dict) -> list[str]:
    counts = ", ".join(f"{n} {v}" for v, n in sorted((data.get("counts") or {}).items()) if n)
    return [f"{data.get('verdict')} ({counts or 'no file'})"]


def rerun(data: dict) -> list[str]:
    rows = (data.get("rerun") or {}).get("tasks") or []
    return [
        f"{r['task']}: claimed {r['claimed']:.6f}, re-run {r['rerun']:.6f}, "
        + ("identical" if r["identical"] else f"delta {r['delta']:+.2e}")
        for r in rows
    ] or ["nothing re-run"]


def main() -> int:
    kind, path = sys.argv[1], Path(sys.argv[2])
    if kind == "digest":
        print(json.loads(path.read_text(encoding="utf-8"))["model"]["digest"])
        return 0
    data = json.loads(path.read_text(encoding="utf-8"))
    show = {"reproduce": reproduce, "signed": signed, "review": review, "rerun": rerun}[kind]
    for line in show(data):
        print(f"   {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
