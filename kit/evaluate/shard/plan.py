"""Split a task list into N shards balanced by expected cost; find which shard to run.

Shards are numbered from 0: ``--shard I/N`` runs shard I of N (0 <= I < N). ``--shard auto``
reads I (and N) from a Kubernetes Indexed Job or a Slurm job array. A plain run never shards.

Assignment (``assign``): longest-processing-time first. Tasks sorted by (cost descending,
name) go one by one to the least loaded shard, ties to the lowest index. Depends only on the
name -> cost map, never on the order the tasks were given in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.bundle.within import MODE
from kit.errors import ExitCode, KitError

K8S_INDEX = "JOB_COMPLETION_INDEX"
K8S_COUNT = "JOB_COMPLETIONS"
SLURM_ID = "SLURM_ARRAY_TASK_ID"
SLURM_COUNT = "SLURM_ARRAY_TASK_COUNT"
SLURM_MIN = "SLURM_ARRAY_TASK_MIN"
SLURM_STEP = "SLURM_ARRAY_TASK_STEP"
_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class ShardSpec:
    """Shard ``index`` (0-based) of ``count``, and where that came from."""

    index: int
    count: int
    source: str = "--shard"

    def __post_init__(self) -> None:
        if self.count < 1:
            raise KitError(f"shard count must be at least 1, not {self.count}", ExitCode.USAGE)
        if not 0 <= self.index < self.count:
            raise KitError(
                f"shard {self.index}/{self.count}: the index is 0-based and must be below "
                f"{self.count} (0..{self.count - 1})",
                ExitCode.USAGE,
            )

    @property
    def spec(self) -> str:
        return f"{self.index}/{self.count}"


def parse_spec(text: str) -> ShardSpec:
    """``"I/N"`` -> ShardSpec; anything else is a usage error."""
    m = _SPEC.match(text or "")
    if not m:
        raise KitError(
            f"--shard {text!r}: expected I/N with 0 <= I < N (e.g. 0/4), or auto", ExitCode.USAGE
        )
    return ShardSpec(int(m.group(1)), int(m.group(2)))


def _int_var(env: Mapping[str, str], name: str) -> int:
    value = env[name].strip()
    if not re.fullmatch(r"-?\d+", value):
        raise KitError(f"{name}={env[name]!r} is not an integer", ExitCode.USAGE)
    return int(value)


def from_environment(env: Mapping[str, str], count: int | None = None) -> ShardSpec:
    """The shard of this Kubernetes Indexed Job pod or Slurm array task.

    Kubernetes sets ``JOB_COMPLETION_INDEX`` (0-based) but not the number of completions:
    N comes from ``count`` (``--shard-count``) or ``JOB_COMPLETIONS`` set in the manifest.
    Slurm: I = (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN) / SLURM_ARRAY_TASK_STEP, so arrays
    starting at 1 (``--array=1-4``) work; N = SLURM_ARRAY_TASK_COUNT.
    """
    names = (K8S_INDEX, K8S_COUNT, SLURM_ID, SLURM_COUNT, SLURM_MIN, SLURM_STEP)
    env = {k: env[k] for k in names if (env.get(k) or "").strip()}  # empty counts as unset
    k8s, slurm = K8S_INDEX in env, SLURM_ID in env
    if k8s and slurm:
        raise KitError(
            f"--shard auto: both {K8S_INDEX} and {SLURM_ID} are set; give --shard I/N",
            ExitCode.USAGE,
        )
    if k8s:
        if count is None and K8S_COUNT not in env:
            raise KitError(
                f"--shard auto: {K8S_INDEX} is set but the shard count is not: pass "
                f"--shard-count N (the Job's completions) or set {K8S_COUNT}",
                ExitCode.USAGE,
            )
        n = count if count is not None else _int_var(env, K8S_COUNT)
        return ShardSpec(_int_var(env, K8S_INDEX), n, K8S_INDEX)
    if slurm:
        env_n = _int_var(env, SLURM_COUNT) if SLURM_COUNT in env else None
        if count is not None and env_n is not None and count != env_n:
            raise KitError(
                f"--shard-count {count} differs from {SLURM_COUNT}={env_n}", ExitCode.USAGE
            )
        given = count if count is not None else env_n
        if given is None:
            raise KitError(
                f"--shard auto: {SLURM_ID} is set but {SLURM_COUNT} is not; pass --shard-count N",
                ExitCode.USAGE,
            )
        first = _int_var(env, SLURM_MIN) if SLURM_MIN in env else 0
        step = _int_var(env, SLURM_STEP) if SLURM_STEP in env else 1
        offset = _int_var(env, SLURM_ID) - first
        if step < 1 or offset % step:
            raise KitError(
                f"--shard auto: {SLURM_ID}={env[SLURM_ID]} is not on the array's grid "
                f"(min {first}, step {step}); use a plain range such as --array=0-{given - 1}",
                ExitCode.USAGE,
            )
        return ShardSpec(offset // step, given, SLURM_ID)
    raise KitError(
        f"--shard auto: neither {K8S_INDEX} (Kubernetes Indexed Job) nor {SLURM_ID} (Slurm "
        "job array) is set; give --shard I/N",
        ExitCode.USAGE,
    )


def resolve_spec(
    shard: str | None, shard_count: int | None, env: Mapping[str, str]
) -> ShardSpec | None:
    """The shard asked for on the command line: None (no sharding), ``I/N`` or ``auto``."""
    if shard is None:
        if shard_count is not None:
            raise KitError("--shard-count goes with --shard auto", ExitCode.USAGE)
        return None
    if shard.strip().lower() == "auto":
        return from_environment(env, shard_count)
    if shard_count is not None:
        raise KitError("--shard-count goes with --shard auto, not --shard I/N", ExitCode.USAGE)
    return parse_spec(shard)


def assign(costs: Mapping[str, int], n: int) -> list[list[str]]:
    """LPT greedy: tasks by (cost desc, name) into the least loaded of ``n`` bins."""
    if n < 1:
        raise ValueError("n must be at least 1")
    if any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in costs.values()):
        raise ValueError("costs must be positive integers")
    bins: list[list[str]] = [[] for _ in range(n)]
    loads = [0] * n
    for name in sorted(costs, key=lambda t: (-costs[t], t)):
        i = min(range(n), key=lambda b: (loads[b], b))
        bins[i].append(name)
        loads[i] += costs[name]
    return bins


def plan(
    tasks: Sequence[str],
    costs: Mapping[str, Mapping[str, Any]],
    spec: ShardSpec,
    within: bool = False,
) -> dict[str, Any]:
    """The ``shard`` record of run.json: full list, assignment, this shard's tasks, costs.

    ``costs`` maps each task to ``{"cost": int, "basis": str}``; ``tasks`` keeps the order
    given (the shard runs its tasks in that order). ``within``: the fewest largest tasks that
    bring the largest shard within 10% of the mean are split inside themselves over every
    shard (``split``: each shard computes its share of their batches, kit/evaluate/shard/
    split.py); the other tasks are assigned whole, as without it.
    """
    dupes = sorted({t for t in tasks if list(tasks).count(t) > 1})
    if dupes:
        raise KitError(f"task given twice: {', '.join(dupes)}", ExitCode.USAGE)
    cost = {t: int(costs[t]["cost"]) for t in tasks}
    split: list[str] = []
    if within:
        from kit.evaluate.shard.split import balanced_plan

        chosen = set(balanced_plan(cost, spec.count)["split"])
        split = [t for t in tasks if t in chosen]
    whole = [t for t in tasks if t not in split]
    if spec.count > len(whole) and not split:
        raise KitError(
            f"--shard {spec.spec}: only {len(tasks)} task(s) to share out; use at most "
            f"{len(tasks)} shards (or split tasks inside themselves: --within-tasks)",
            ExitCode.USAGE,
        )
    bins = assign({t: cost[t] for t in whole}, spec.count) if whole else [[]] * spec.count
    mine = set(bins[spec.index]) | set(split)
    share = {t: -(-cost[t] // spec.count) for t in split}  # each shard's share of a split task
    record = {
        "index": spec.index,
        "count": spec.count,
        "spec": spec.spec,
        "source": spec.source,
        "tasks_all": list(tasks),
        "tasks": [t for t in tasks if t in mine],
        "assignment": [list(b) for b in bins],
        "loads": [sum(cost[t] for t in b) + sum(share.values()) for b in bins],
        "costs": {t: dict(costs[t]) for t in tasks},
        "cost_model": COST_MODEL,
    }
    if within:
        record.update(mode=MODE, split=split)
    return record


COST_MODEL = (
    "longest-processing-time-first over the number of texts to embed per task, from mteb's "
    "descriptive statistics (kit/evaluate/shard/cost.py)"
)


def check_same_shard(
    out: Path, was: str | None, resumed: bool, shard: Mapping[str, Any] | None
) -> None:
    """Resuming must keep the shard (a folder holds one shard's run); OUTPUT otherwise."""
    now = (shard or {}).get("spec")
    if resumed and was != now:
        raise KitError(
            f"{out} holds {f'shard {was}' if was else 'an unsharded run'}, not "
            f"{f'shard {now}' if now else 'an unsharded run'}; use another --output or --overwrite",
            ExitCode.OUTPUT,
        )
