"""How well `--shard I/N` balances MTEB(eng, v2) and MTEB(eng, v1): the plan the kit computes.

For each benchmark: its tasks as `repro-kit evaluate --benchmark` resolves them, every task's
expected cost (texts to embed, from mteb's descriptive statistics: kit/evaluate/taskcost.py),
and the kit's own assignment (longest-processing-time first) at N = 2, 4, 8, 16. Prints the
balance (largest shard's cost / mean shard cost: 1.00 is perfect, and the wall time of the
array is about balance x the ideal 1/N of the unsharded time), the largest single task's share
of the whole, and from which N that task alone exceeds the mean shard (then more shards do not
help: the shard holding it, always shard 0, is the critical path). No model, no data, offline.

    python benchmarks/shard_plan.py [--benchmark "MTEB(eng, v2)" ...] [--n 2 4 8 16] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys

from kit.evaluate.mteb_adapter import resolve_tasks
from kit.evaluate.shard.cost import task_costs
from kit.evaluate.shard.plan import assign

BENCHMARKS = ("MTEB(eng, v2)", "MTEB(eng, v1)")


def _loads(costs: dict[str, int], n: int) -> list[int]:
    return [sum(costs[t] for t in b) for b in assign(costs, n)]


def plan_figures(benchmark: str, ns: list[int]) -> dict:
    costs = {t: c["cost"] for t, c in task_costs(resolve_tasks((), benchmark)).items()}
    total = sum(costs.values())
    largest = max(costs, key=lambda t: (costs[t], t))
    rows = []
    for n in ns:
        bins = assign(costs, n)
        loads = _loads(costs, n)
        mean = total / n
        rows.append(
            {
                "n": n,
                "balance": max(loads) / mean,
                "largest_shard_tasks": len(bins[loads.index(max(loads))]),
                "largest_task_over_mean": costs[largest] / mean,
                "speedup": total / max(loads),
            }
        )
    return {
        "benchmark": benchmark,
        "tasks": len(costs),
        "total_texts": total,
        "largest_task": largest,
        "largest_task_texts": costs[largest],
        "largest_task_share": costs[largest] / total,
        # the speed-up can never pass total / largest; the fewest shards that reach it:
        "max_speedup": total / costs[largest],
        "n_best": next(
            n for n in range(1, len(costs) + 1) if max(_loads(costs, n)) == costs[largest]
        ),
        "rows": rows,
    }


def advice(f: dict) -> list[str]:
    over = [r["n"] for r in f["rows"] if r["largest_task_over_mean"] > 1]
    if not over:
        return [f"{f['benchmark']}: balanced at every N shown; more shards, shorter wall time."]
    return [
        f"{f['benchmark']}: {f['largest_task']} alone is {f['largest_task_share']:.0%} of all "
        f"texts and exceeds the mean shard from N={over[0]}. The shard holding it (shard 0, "
        "alone) sets the wall time: the array can never run more than "
        f"{f['max_speedup']:.2f}x faster than one machine, and N={f['n_best']} already gets "
        "that; more shards only add idle nodes.",
        f"  What to do: use N={f['n_best']} (more only if the other shards must fit a "
        "shorter time limit); make that task fast instead: run the whole array on GPU nodes "
        "(DEVICE=cuda for every shard: shards must agree on the device kind) or give every "
        "array task more CPUs; size the Slurm --time for shard 0, not for the mean shard "
        f"(at N={f['rows'][-1]['n']} shard 0 is {f['rows'][-1]['balance']:.1f}x the mean).",
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--benchmark", action="append", help="default: MTEB(eng, v2) and v1")
    ap.add_argument("--n", type=int, nargs="+", default=[2, 4, 8, 16])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    figures = [plan_figures(b, args.n) for b in args.benchmark or BENCHMARKS]
    if args.json:
        json.dump(figures, sys.stdout, indent=2)
        print()
        return 0
    for f in figures:
        print(
            f"{f['benchmark']}: {f['tasks']} tasks, {f['total_texts']:,} texts; largest task "
            f"{f['largest_task']} ({f['largest_task_texts']:,} texts, "
            f"{f['largest_task_share']:.1%} of all)"
        )
        print("   N  balance (max/mean)  largest task / mean  speed-up vs 1 shard")
        for r in f["rows"]:
            print(
                f"  {r['n']:>2}  {r['balance']:>18.2f}  {r['largest_task_over_mean']:>19.2f}"
                f"  {r['speedup']:>19.2f}"
            )
        for line in advice(f):
            print(line)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
