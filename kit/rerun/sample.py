"""A seeded draw of K tasks that prefers cheap ones, for spot-checking a bundle by re-running.

Weighted sampling without replacement (Efraimidis-Spirakis): each task gets the key
``u ** (1 / w)`` with ``u`` uniform from ``random.Random(seed)`` and weight
``w = cost ** -EXPONENT``; the K largest keys win. With EXPONENT 0.5 a task 100 times as
expensive is drawn about 10 times less often: cheap tasks dominate, yet every task keeps a
chance, so an author cannot know which of their numbers a reviewer will re-run. The draw
depends only on the seed and the name -> cost map (names are sorted first), never on order.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from kit.errors import ExitCode, KitError

EXPONENT = 0.5


def weights(costs: Mapping[str, float]) -> dict[str, float]:
    """Each task's draw weight, ``cost ** -EXPONENT`` (a cost below 1 counts as 1)."""
    return {name: max(float(cost), 1.0) ** -EXPONENT for name, cost in costs.items()}


def draw(costs: Mapping[str, float], k: int, seed: int) -> list[str]:
    """K task names drawn from ``costs`` ({name: cost}); cheap ones first in the result."""
    if k < 1:
        raise KitError(f"--sample must be at least 1, not {k}", ExitCode.USAGE)
    if k > len(costs):
        raise KitError(
            f"--sample {k}: the bundle has only {len(costs)} task(s) to draw from", ExitCode.USAGE
        )
    rng = random.Random(seed)
    w = weights(costs)
    keys = {name: rng.random() ** (1.0 / w[name]) for name in sorted(costs)}
    chosen = sorted(keys, key=lambda n: (-keys[n], n))[:k]
    return sorted(chosen, key=lambda n: (costs[n], n))
