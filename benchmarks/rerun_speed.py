"""Wall time of `verify --rerun` of two STS tasks against the original run of those tasks.

Runs, each as a user would (the CLI in a subprocess, offline, on a copy of the shared cache):
an untimed warm-up, the original `evaluate` of STSBenchmark + STS12, then `verify --rerun` of
its bundle three ways: without the embedding cache, with a cold cache (first re-run into a
folder) and with a warm one (the same re-run again into that folder). Prints seconds and
ratios to the original.

    python benchmarks/rerun_speed.py [--repeats 1] [--shared ../shared]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kit.machine.hfcache import install_default_model

TASKS = "STSBenchmark,STS12"
DATASETS = ("mteb___stsbenchmark-sts", "mteb___sts12-sts")


def _hf_home(shared: Path, dest: Path) -> Path:
    for name in DATASETS:
        shutil.copytree(shared / "mteb-cache" / "datasets" / name, dest / "datasets" / name)
    for p in [dest, *dest.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o200)
    install_default_model(dest)
    return dest


def _kit(args: list[str], hf: Path) -> tuple[float, subprocess.CompletedProcess]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HOME=str(hf), HF_HUB_OFFLINE="1")
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "kit", *args], env=env, capture_output=True, text=True
    )
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"repro-kit {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return took, proc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kit-rerun-bench-"))
    try:
        hf = _hf_home(args.shared, work / "hf")
        # warm-up (untimed): the first load of a fresh cache copy writes datasets' arrow files
        _kit(["evaluate", "--tasks", TASKS, "-o", str(work / "warmup"), "--offline", "-q"], hf)
        times: dict[str, list[float]] = {"original": [], "no cache": [], "cold": [], "warm": []}
        inner: dict[str, list[float]] = {k: [] for k in ("no cache", "cold", "warm")}
        for i in range(args.repeats):
            src, bundle = work / f"src{i}", work / f"b{i}.tar.gz"
            took, _ = _kit(["evaluate", "--tasks", TASKS, "-o", str(src), "--offline", "-q"], hf)
            times["original"].append(took)
            _kit(["bundle", str(src), "-o", str(bundle)], hf)
            base = ["verify", str(bundle), "--allow-unsigned", "--rerun", TASKS, "--offline"]
            runs = [
                ("no cache", ["--no-embedding-cache", "--rerun-output", str(work / f"n{i}")]),
                ("cold", ["--rerun-output", str(work / f"c{i}")]),
                ("warm", ["--rerun-output", str(work / f"c{i}")]),
            ]
            for label, extra in runs:
                took, proc = _kit([*base, *extra, "--json"], hf)
                result = json.loads(proc.stdout)["rerun"]
                assert all(r["identical"] for r in result["tasks"]), result["tasks"]
                times[label].append(took)
                inner[label].append(result["wall_seconds"])
        orig = statistics.median(times["original"])
        print(
            f"tasks: {TASKS}; {args.repeats} repeat(s), medians; CPU count {os.cpu_count()}, "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        print(f"original evaluate:           {orig:7.1f} s")
        for label in ("no cache", "cold", "warm"):
            t = statistics.median(times[label])
            print(
                f"verify --rerun ({label + ')':<9}  {t:7.1f} s  ratio {t / orig:.2f}  "
                f"(re-run itself {statistics.median(inner[label]):.1f} s)"
            )
        print("all re-run scores identical to the claimed ones")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
