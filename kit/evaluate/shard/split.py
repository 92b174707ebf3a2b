"""The within-task plan: split the tasks that dominate a benchmark over every shard.

Task-level sharding (``plan.assign``, LPT) cannot beat ``total / largest task``: MTEB(eng, v2)
is 56% MindSmallReranking, so 1.77x at any N. Here a task whose cost exceeds ``threshold x``
the mean shard (``total / N``) is split inside itself: every shard computes ``1/N`` of its
batches (batch ``g`` of the task to shard ``g mod N``), so each shard starts with an equal
share of every split task; the other tasks then go, LPT as before, to the least loaded shard.
The speed-up is ``total / largest shard load`` (costs in texts to embed, as ``cost``).

Granularity is one batch: a split task of ``c`` texts puts ``ceil(ceil(c / bs) / N)`` batches
on shard 0 at most, one more than on the last shard, which ``split_loads`` counts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def split_loads(cost: int, n: int, batch_size: int) -> list[int]:
    """Texts of one split task per shard: batches ``g mod n``, the last batch partial."""
    batches = math.ceil(cost / batch_size)
    loads = [0] * n
    for i in range(n):
        count = len(range(i, batches, n))
        loads[i] = count * batch_size
    last = (batches - 1) % n  # the partial batch's shard
    loads[last] -= batches * batch_size - cost
    return loads


def within_plan(
    costs: Mapping[str, int],
    n: int,
    threshold: float = 1.0,
    batch_size: int = 32,
    split: list[str] | None = None,
) -> dict[str, Any]:
    """Which tasks are split, each shard's tasks and load, and the speed-up (plain data).

    ``split`` (default: every task over ``threshold x`` the mean shard) names them outright.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    total = sum(costs.values())
    mean = total / n
    if split is None:
        split = [t for t, c in costs.items() if n > 1 and c > threshold * mean]
    split = sorted(split, key=lambda t: (-costs[t], t))
    loads = [0] * n
    for t in split:
        for i, x in enumerate(split_loads(costs[t], n, batch_size)):
            loads[i] += x
    bins: list[list[str]] = [list(split) for _ in range(n)]
    for t in sorted((t for t in costs if t not in split), key=lambda t: (-costs[t], t)):
        i = min(range(n), key=lambda b: (loads[b], b))
        bins[i].append(t)
        loads[i] += costs[t]
    return {
        "n": n,
        "threshold": threshold,
        "split": split,
        "assignment": bins,
        "loads": loads,
        "balance": max(loads) / mean,
        "speedup": total / max(loads),
        "efficiency": total / max(loads) / n,
    }


def balanced_plan(
    costs: Mapping[str, int], n: int, tolerance: float = 0.1, batch_size: int = 32
) -> dict[str, Any]:
    """Split the fewest largest tasks that bring the largest shard within ``1 + tolerance`` of
    the mean (each split task costs every shard a data load and the reduce one more task)."""
    order = sorted(costs, key=lambda t: (-costs[t], t))
    best = within_plan(costs, n, batch_size=batch_size, split=[])
    for k in range(1, len(order) + 1 if n > 1 else 1):
        if best["balance"] <= 1 + tolerance:
            break
        plan = within_plan(costs, n, batch_size=batch_size, split=order[:k])
        if plan["speedup"] > best["speedup"]:
            best = plan
    return best
