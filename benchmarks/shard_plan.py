"""How well `--shard I/N` balances MTEB(eng, v2) and MTEB(eng, v1): the plans the kit computes.

For each benchmark: its tasks as `repro-kit evaluate --benchmark` resolves them, every task's
expected cost (texts to embed, from mteb's descriptive statistics: kit/evaluate/shard/cost.py),
and the kit's own assignment (longest-processing-time first) at N = 2, 4, 8, 16. Prints the
balance (largest shard's cost / mean shard cost: 1.00 is perfect, and the wall time of the
array is about balance x the ideal 1/N of the unsharded time), the largest single task's share
of the whole, and from which N that task alone exceeds the mean shard (then more shards do not
help: the shard holding it, always shard 0, is the critical path).

Beside it, the plan of `--shard I/N --within-tasks` (kit/evaluate/shard/plan.py, split.py): the
fewest largest tasks that bring the largest shard within 10% of the mean are split inside
themselves (every shard computes its share of their encoder batches, in batches of 32), the
others go whole as before; its speed-up, and the tasks it splits. Not in these figures: every
shard loads a split task's data and runs mteb's scoring on zeros, and the merge scores each
split task once (seconds per task; benchmarks/within_task_speed.py measures them). The costs
used are printed (`--costs`: every task's). No model, no data, offline.

    python benchmarks/shard_plan.py [--benchmark "MTEB(eng, v2)" ...] [--n 2 4 8 16] [--costs]
                                    [--json]
"""

from __future__ import annotations

import argparse
import json
import sys

from kit.evaluate.mteb_adapter import resolve_tasks
from kit.evaluate.shard.cost import task_costs
from kit.evaluate.shard.plan import assign
from kit.evaluate.shard.split import balanced_plan

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
        within = balanced_plan(costs, n)
        rows.append(
            {
                "n": n,
                "balance": max(loads) / mean,
                "largest_shard_tasks": len(bins[loads.index(max(loads))]),
                "largest_task_over_mean": costs[largest] / mean,
                "speedup": total / max(loads),
                "within_speedup": within["speedup"],
                "within_split": within["split"],
                "within_loads": within["loads"],
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
        "costs": dict(sorted(costs.items(), key=lambda kv: (-kv[1], kv[0]))),
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
        f"  Or split it inside itself: --shard I/N --within-tasks (plan below) gives "
        f"{f['rows'][-1]['within_speedup']:.2f}x at N={f['rows'][-1]['n']}.",
    ]


def _print_within(f: dict, every: bool) -> None:
    """The tasks --within-tasks splits at each N, and the costs the plans use."""
    costs, total = f["costs"], f["total_texts"]
    print("  --within-tasks splits (cost in texts, share of all):")
    for r in f["rows"]:
        split = ", ".join(f"{t} {costs[t]:,} ({costs[t] / total:.1%})" for t in r["within_split"])
        print(f"    N={r['n']}: {split or 'nothing (task-level is balanced)'}")
    shown = list(costs) if every else list(costs)[:10]
    print(f"  costs used ({'all' if every else 'largest 10; --costs: all'} {len(costs)} tasks):")
    for t in shown:
        print(f"    {costs[t]:>10,}  {costs[t] / total:>6.1%}  {t}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--benchmark", action="append", help="default: MTEB(eng, v2) and v1")
    ap.add_argument("--n", type=int, nargs="+", default=[2, 4, 8, 16])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--costs", action="store_true", help="print every task's cost")
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
        print(
            "   N  balance (max/mean)  largest task / mean  speed-up vs 1 shard"
            "  --within-tasks speed-up (x N)"
        )
        for r in f["rows"]:
            print(
                f"  {r['n']:>2}  {r['balance']:>18.2f}  {r['largest_task_over_mean']:>19.2f}"
                f"  {r['speedup']:>19.2f}  {r['within_speedup']:>22.2f} "
                f"({r['within_speedup'] / r['n']:.2f})"
            )
        for line in advice(f):
            print(line)
        _print_within(f, args.costs)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
