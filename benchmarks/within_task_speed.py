"""One task on 1 machine vs split inside the task over N shards, side by side, and the reduce.

Runs the real CLI, each step its own process (as separate machines would), one after another
on this machine: `repro-kit evaluate MODEL --tasks TASK` (the unsharded run), then
`repro-kit evaluate ... --shard I/3 --within-tasks --store STORE` for I = 0..N-1, then
`repro-kit merge SHARDS... --store STORE` (verifies the shard bundles, checks the plan, scores
the task once from the store with no model). Prints each step's wall and CPU seconds and peak
RSS, the reduce's own time (run.json), the store's size (and per million texts), and the
speed-up of an array (slowest shard + merge) over the unsharded run, by wall and by CPU time
(CPU seconds are steadier on a shared host). Checks that every score of the merged result file
equals the unsharded one (==); the embeddings' bit identity is tested in tests/system/.

    python benchmarks/within_task_speed.py --work /tmp/wt [--task SciFact] [--n 3]

Needs HF_HOME holding the task's data and the model (tests/support.py ``make_hf_home``, or a
prefetched cache), offline.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def _run(args: list[str], log: Path) -> dict:
    """Run `repro-kit ARGS` as its own process; wall, CPU seconds and peak RSS of it."""
    t0 = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "kit", *args], stdout=out, stderr=out)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"repro-kit {args[0]} failed ({code}); see {log}")
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": usage.ru_maxrss / 1024,
    }


def _member(bundle: Path, suffix: str) -> dict:
    with tarfile.open(bundle) as tar:
        names = [m.name for m in tar.getmembers() if m.isfile() and m.name.endswith(suffix)]
        return json.loads(tar.extractfile(min(names, key=len)).read())


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="SciFact")
    ap.add_argument("--n", type=int, default=3)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--reuse-plain", action="store_true", help="keep an earlier unsharded run")
    a = ap.parse_args(argv)
    w, t = a.work, a.task
    w.mkdir(parents=True, exist_ok=True)
    common = ["--tasks", t, "--offline", "-q", "--no-sign", "--overwrite"]
    plain_json = w / "plain.json"
    if a.reuse_plain and plain_json.exists():
        plain = json.loads(plain_json.read_text())
    else:
        plain = _run(
            [
                "evaluate",
                MODEL,
                *common,
                "-o",
                str(w / "plain"),
                "--bundle",
                str(w / "plain.tar.gz"),
            ],
            w / "plain.log",
        )
        plain_json.write_text(json.dumps(plain))
    store = w / "store"
    shards = []
    for i in range(a.n):
        args = [
            "evaluate",
            MODEL,
            *common,
            "--shard",
            f"{i}/{a.n}",
            "--within-tasks",
            "--store",
            str(store),
            "-o",
            str(w / f"shard-{i}"),
            "--bundle",
            str(w / f"shard-{i}.tar.gz"),
        ]
        shards.append(_run(args, w / f"shard-{i}.log"))
    bundles = [str(w / f"shard-{i}.tar.gz") for i in range(a.n)]
    merged = w / "merged.tar.gz"
    merge = _run(
        ["merge", *bundles, "-o", str(merged), "--store", str(store), "--allow-unsigned"],
        w / "merge.log",
    )
    entry = next(x for x in _member(merged, "run.json")["tasks"] if x["name"] == t)
    texts = sum(s["texts"] for s in entry["within"]["shards"].values()) // a.n
    got, want = _member(merged, f"/{t}.json"), _member(w / "plain.tar.gz", f"/{t}.json")
    size = _size(store)
    report = {
        "task": t,
        "n": a.n,
        "plain": plain,
        "shards": shards,
        "merge": merge,
        "reduce_s": entry["within"]["reduce_seconds"],
        "within": entry["within"],
        "scores_equal": got["scores"] == want["scores"],
        "store_bytes": size,
        "texts": texts,
        "store_bytes_per_million_texts": size / texts * 1e6 if texts else None,
        "speedup_wall": plain["wall_s"] / (max(s["wall_s"] for s in shards) + merge["wall_s"]),
        "speedup_cpu": plain["cpu_s"] / (max(s["cpu_s"] for s in shards) + merge["cpu_s"]),
        "loadavg_end": os.getloadavg(),
    }
    print(f"{t}: 1 machine vs {a.n} within-task shards (batch size 32), each its own process")
    print(f"  {'run':<10} {'wall s':>8} {'cpu s':>8} {'batches':>8} {'peak RSS MiB':>13}")
    print(
        f"  {'1 machine':<10} {plain['wall_s']:>8.1f} {plain['cpu_s']:>8.1f} {'all':>8} "
        f"{plain['peak_rss_mib']:>13.0f}"
    )
    for i, s in enumerate(shards):
        done = entry["within"]["shards"][str(i)]
        print(
            f"  {'shard ' + str(i):<10} {s['wall_s']:>8.1f} {s['cpu_s']:>8.1f} "
            f"{done['computed']:>8} {s['peak_rss_mib']:>13.0f}"
        )
    print(
        f"  {'merge':<10} {merge['wall_s']:>8.1f} {merge['cpu_s']:>8.1f} {'-':>8} "
        f"{merge['peak_rss_mib']:>13.0f}   (verify {a.n} bundles + reduce; the reduce "
        f"itself {report['reduce_s']:.1f} s)"
    )
    print(
        f"  array (slowest shard + merge): speed-up {report['speedup_wall']:.2f}x by wall, "
        f"{report['speedup_cpu']:.2f}x by CPU seconds"
    )
    print(
        f"  store: {size / 1e6:.1f} MB for {texts} texts "
        f"({report['store_bytes_per_million_texts'] / 1e9:.2f} GB per million texts)"
    )
    print(
        f"  every score equal to the unsharded run's: {report['scores_equal']}; main score "
        f"{entry['main_score']!r}"
    )
    print(f"  load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    (w / "report.json").write_text(json.dumps(report, indent=2, default=str))
    return 0 if report["scores_equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
