"""What a report compares a bundle with: published scores, mteb result files or a bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kit.bundle.jsonread import parse
from kit.signing.policy import AcceptUnsigned
from kit.verify.reference import Reference, load_reference
from kit.verify.verified import require_verified

_GZIP_MAGIC = b"\x1f\x8b"


def _is_bundle(path: Path) -> bool:
    if not path.is_file():
        return False
    with open(path, "rb") as f:
        return f.read(2) == _GZIP_MAGIC


def load_against(path: Path) -> tuple[Reference, dict[str, Any]]:
    """A reference (JSON or folder of mteb files) or another bundle's manifest scores."""
    path = Path(path)
    if _is_bundle(path):
        m = require_verified(path, AcceptUnsigned(None), "refusing to report against").manifest
        scores = {name: t["main_score"] for name, t in m["tasks"].items()}
        label = f"bundle {m['model']['name']} @ {m['model']['revision']}"
        return Reference(str(path), scores, {}), {
            "kind": "bundle",
            "source": str(path),
            "label": label,
            "published_means": [],
            "benchmarks": {},
        }
    ref = load_reference(path)
    info: dict[str, Any] = {
        "kind": "results folder" if path.is_dir() else "reference file",
        "source": str(path),
        "label": str(path),
        "published_means": [],
        "benchmarks": {},
    }
    if path.is_file():
        data = parse(path.read_bytes())  # load_reference has checked it parses
        if isinstance(data, dict):
            info.update(_published(data))
    return ref, info


def _published(data: dict[str, Any]) -> dict[str, Any]:
    """The reference file's own named means, with its labels kept verbatim."""
    out: dict[str, Any] = {"published_means": [], "benchmarks": {}}
    if isinstance(data.get("model"), str):
        out["label"] = f"{data['model']} (published scores)"
    for row in data.get("rows") or []:
        if isinstance(row, dict) and isinstance(row.get("task"), str):
            for b in row.get("benchmarks") or []:
                if isinstance(b, str):
                    out["benchmarks"].setdefault(b, set()).add(row["task"])
    out["benchmarks"] = {b: sorted(t) for b, t in sorted(out["benchmarks"].items())}
    aggs = data.get("aggregates")
    if not isinstance(aggs, dict):
        return out
    type_counts: dict[tuple[str, str], int] = {}
    for row in data.get("rows") or []:
        if isinstance(row, dict) and isinstance(row.get("type"), str):
            for b in row.get("benchmarks") or []:
                if isinstance(b, str):
                    type_counts[(b, row["type"])] = type_counts.get((b, row["type"]), 0) + 1
    for bench, agg in aggs.items():
        if not isinstance(agg, dict):
            continue
        n = agg.get("n_tasks")
        note = agg.get("note") if isinstance(agg.get("note"), str) else None
        per_type: dict[str, Any] = (
            agg["mean_per_type"] if isinstance(agg.get("mean_per_type"), dict) else {}
        )
        glosses = {
            "mean_task": f"mean over tasks{_count(n, 'task')}",
            "mean_type": f"mean over task types{_count(len(per_type) or None, 'type')}",
        }
        for key, gloss in glosses.items():
            if is_number(agg.get(key)):
                out["published_means"].append(_pub(str(bench), key, gloss, agg[key], note))
        for t, v in per_type.items():
            if is_number(v):
                gloss = f"{t} mean{_count(type_counts.get((bench, t)), 'task')}"
                out["published_means"].append(
                    _pub(str(bench), f"mean_per_type.{t}", gloss, v, note)
                )
    return out


def _count(n: Any, word: str) -> str:
    return f" ({plural(n, word)})" if isinstance(n, int) and not isinstance(n, bool) else ""


def _pub(bench: str, key: str, gloss: str, value: float, note: str | None) -> dict[str, Any]:
    return {
        "benchmark": bench,
        "label": f"{bench} {key}",  # verbatim: the file's benchmark name and key
        "gloss": f"{bench}: {gloss}",
        "value": float(value),
        "note": note,
    }


def is_number(v: Any) -> bool:
    """A real number (not a bool)."""
    return isinstance(v, int | float) and not isinstance(v, bool)


def plural(n: int, word: str) -> str:
    """``1 task``, ``2 tasks``."""
    return f"{n} {word}{'' if n == 1 else 's'}"
