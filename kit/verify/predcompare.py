"""Compare two runs' predictions sample by sample (``compare A B``, ``verify --rerun``).

``compare_payloads`` takes two checked payloads of one (split, subset) of one task
(``kit.bundle.predictions.read_predictions``) and says which samples moved: for STS and
pair classification each row whose score changed (index and both values); for
classification each row whose predicted label changed in any experiment; for retrieval
each query whose ordered top 10 changed, with the mean Spearman rank correlation of the
two rankings over the documents both ranked in their top 100.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kit.bundle.predictions import read_predictions

TOP = 10  # a query "changed" when its ordered top 10 changed
RANK_DEPTH = 100  # the rank correlation looks at the documents both runs ranked this high


@dataclass
class SampleDiff:
    """What moved between two runs of one (split, subset)."""

    kind: str
    samples: int
    changed: list[Any] = field(default_factory=list)  # (index, a, b) or query ids
    max_abs_delta: float = 0.0
    rank_correlation: float | None = None  # retrieval: mean Spearman over queries

    def summary(self) -> str:
        head = f"{len(self.changed)} of {self.samples} samples changed"
        if self.kind in ("sts", "pair_classification"):
            head += f" (largest score change {self.max_abs_delta:.3g})"
        if self.rank_correlation is not None:
            head += f"; mean rank correlation of the top {RANK_DEPTH} {self.rank_correlation:.6f}"
        return head


def compare_payloads(kind: str, a: Any, b: Any, key: str = "cosine_scores") -> SampleDiff:
    """Sample-level differences of two payloads of the same task, split and subset."""
    if kind in ("sts", "pair_classification"):
        xs, ys = a[key], b[key]
        _same_length(xs, ys)
        changed = [(i, x, y) for i, (x, y) in enumerate(zip(xs, ys, strict=True)) if x != y]
        delta = max((abs(x - y) for _, x, y in changed), default=0.0)
        return SampleDiff(kind, len(xs), changed, delta)
    if kind == "classification":
        _same_length(a, b)
        rows = len(a[0])
        moved = sorted(
            {i for ea, eb in zip(a, b, strict=True) for i in range(rows) if ea[i] != eb[i]}
        )
        return SampleDiff(kind, rows, [(i, [e[i] for e in a], [e[i] for e in b]) for i in moved])
    if kind == "retrieval":
        return _retrieval(a, b)
    raise ValueError(f"no sample-level comparison for task type {kind}")


def _same_length(a: Any, b: Any) -> None:
    if len(a) != len(b):
        raise ValueError(f"the runs predicted {len(a)} and {len(b)} samples")


def _ranking(docs: dict[str, float]) -> list[str]:
    # mteb ranks by score, ties by document id descending (retrieval_metrics.mrr, pytrec_eval)
    return [d for d, _ in sorted(docs.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)]


def _spearman(ra: list[str], rb: list[str]) -> float | None:
    in_b = set(rb)
    common = [d for d in ra if d in in_b]
    n = len(common)
    if n < 2:
        return None
    both = set(common)
    pos_a = {d: i for i, d in enumerate(common)}
    pos_b = {d: i for i, d in enumerate(d for d in rb if d in both)}
    d2 = sum((pos_a[d] - pos_b[d]) ** 2 for d in common)
    return 1.0 - 6.0 * d2 / (n * (n * n - 1))


def _retrieval(a: dict[str, dict[str, float]], b: dict[str, dict[str, float]]) -> SampleDiff:
    if set(a) != set(b):
        raise ValueError("the runs ranked different queries")
    changed, rhos = [], []
    for qid in sorted(a):
        ra, rb = _ranking(a[qid]), _ranking(b[qid])
        if ra[:TOP] != rb[:TOP]:
            changed.append(qid)
        rho = _spearman(ra[:RANK_DEPTH], rb[:RANK_DEPTH])
        if rho is not None:
            rhos.append(rho)
    mean = sum(rhos) / len(rhos) if rhos else None
    return SampleDiff("retrieval", len(a), changed, rank_correlation=mean)


SHOWN = 5  # changed samples listed per (split, subset): the largest changes first


@dataclass(frozen=True)
class SidePredictions:
    """One side's predictions of one task: its kind, top-k cut and the member's bytes."""

    kind: str
    top_k: int | None
    data: bytes


def _largest(diff: SampleDiff) -> list[Any]:
    if diff.kind in ("sts", "pair_classification"):
        ranked = sorted(diff.changed, key=lambda c: abs(c[1] - c[2]), reverse=True)
        return [{"index": i, "a": x, "b": y} for i, x, y in ranked[:SHOWN]]
    if diff.kind == "classification":
        return [{"index": i, "a": x, "b": y} for i, x, y in diff.changed[:SHOWN]]
    return [{"query": q} for q in diff.changed[:SHOWN]]


def compare_tasks(
    a: Mapping[str, SidePredictions], b: Mapping[str, SidePredictions]
) -> list[dict[str, Any]]:
    """Per task and (split, subset) both sides predicted: how many samples changed, and the
    largest changes. Each member is read strictly (a refusal is SCHEMA, as for any member)."""
    rows: list[dict[str, Any]] = []
    for task in sorted(set(a) & set(b)):
        pa, pb = a[task], b[task]
        if pa.kind != pb.kind:
            continue
        ra, rb = read_predictions(pa.data, pa.kind), read_predictions(pb.data, pb.kind)
        for (subset, split), payload in ra.payloads.items():
            row: dict[str, Any] = {"task": task, "split": split, "subset": subset, "kind": pa.kind}
            other = rb.payloads.get((subset, split))
            try:
                if other is None:
                    raise ValueError("only the first side predicted it")
                diff = compare_payloads(pa.kind, payload, other)
            except (ValueError, KeyError, TypeError) as e:
                rows.append({**row, "compared": False, "reason": str(e)})
                continue
            rows.append(
                {
                    **row,
                    "compared": True,
                    "samples": diff.samples,
                    "changed": len(diff.changed),
                    "largest_change": diff.max_abs_delta if pa.kind in _SCORED else None,
                    "rank_correlation": diff.rank_correlation,
                    "summary": diff.summary(),
                    "examples": _largest(diff),
                }
            )
    return rows


_SCORED = ("sts", "pair_classification")
