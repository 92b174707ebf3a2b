"""Within-task sharding's embeddings, dumped to compare bit for bit (run as a script).

    python -m tests.withintools plain --tasks T1,T2 -o RUN --dump DIR
        the kit's own unsharded run (kit.evaluate.runner.run_evaluation, as `evaluate` runs
        it), saving every array mteb gets from the model: DIR/<task>-<seq>.npy, in call order
    python -m tests.withintools store --bundles B0 B1 ... --store S --dump DIR
        every call the shard bundles recorded, assembled from the store through their
        verified indexes (what the merge hands mteb), under the same names
    python -m tests.withintools compare DIR_A DIR_B
        one JSON line: calls, rows, rows that differ in any bit, the largest difference

Not a test module: tests/system/test_within_slurm.py runs it in subprocesses.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


class Dumper:
    """The model as mteb sees it; saves each array ``encode`` returns, numbered per task."""

    def __init__(self, model: Any, folder: Path) -> None:
        self._model, self.folder, self.seq = model, folder, {}
        folder.mkdir(parents=True, exist_ok=True)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def encode(self, inputs: Any, **kw: Any) -> Any:
        import numpy as np

        out = self._model.encode(inputs, **kw)
        task = kw["task_metadata"].name
        n = self.seq.get(task, 0)
        self.seq[task] = n + 1
        arr = np.asarray(out.detach().cpu() if hasattr(out, "detach") else out)
        np.save(self.folder / f"{task}-{n:04d}.npy", arr, allow_pickle=False)
        return out


def plain(a: argparse.Namespace) -> dict[str, Any]:
    from kit.evaluate.options import EvalOptions
    from kit.evaluate.runner import run_evaluation

    opts = EvalOptions(
        tasks=tuple(a.tasks.split(",")),
        output=a.output,
        offline=True,
        overwrite=True,
        quiet=True,
        inner_progress=False,
        device="cpu",
        command=["tests.withintools", "plain"],
    )
    summary = run_evaluation(opts, wrap_model=lambda m: Dumper(m, a.dump))
    return {"status": summary.record.status}


def store(a: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from kit.bundle.archive import read_bundle_archive
    from kit.bundle.within import index_files, parse_index
    from kit.evaluate.shard.store import MergedStore, find_packs

    indexes = []
    for path in a.bundles:
        members = read_bundle_archive(Path(path))
        indexes.append(parse_index(index_files(members, "within/"), str(path)))
    merged = MergedStore(indexes, find_packs([a.store], indexes[0].count))
    calls = {k: c for s in indexes for k, c in s.calls.items()}
    a.dump.mkdir(parents=True, exist_ok=True)
    for key, c in sorted(calls.items(), key=lambda kv: (kv[1]["task"], kv[1]["seq"])):
        np.save(
            a.dump / f"{c['task']}-{c['seq']:04d}.npy", merged.assemble(key), allow_pickle=False
        )
    return {"calls": len(calls)}


def compare(a: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    left, right = sorted(a.a.glob("*.npy")), sorted(a.b.glob("*.npy"))
    if [p.name for p in left] != [p.name for p in right]:
        return {
            "equal": False,
            "why": "other calls",
            "a": [p.name for p in left],
            "b": [p.name for p in right],
        }
    rows = differ = 0
    worst = 0.0
    for x, y in zip(left, right, strict=True):
        u, v = np.load(x), np.load(y)
        if u.shape != v.shape or u.dtype != v.dtype:
            return {"equal": False, "why": f"{x.name}: {u.shape} {u.dtype} vs {v.shape} {v.dtype}"}
        rows += u.shape[0]
        differ += int(np.any(u.view(np.uint32) != v.view(np.uint32), axis=1).sum())
        worst = max(worst, float(np.max(np.abs(u - v))) if u.size else 0.0)
    return {
        "calls": len(left),
        "rows": rows,
        "rows_differ": differ,
        "max_abs_diff": worst,
        "equal": differ == 0,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("plain")
    p.add_argument("--tasks", required=True)
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--dump", type=Path, required=True)
    s = sub.add_parser("store")
    s.add_argument("--bundles", nargs="+", required=True)
    s.add_argument("--store", type=Path, required=True)
    s.add_argument("--dump", type=Path, required=True)
    c = sub.add_parser("compare")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    a = ap.parse_args(argv)
    out = {"plain": plain, "store": store, "compare": compare}[a.cmd](a)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
