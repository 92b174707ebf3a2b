"""`verify --recompute` (no model) against `verify --rerun` (the model again) of one bundle.

Runs as a user would (the CLI in a subprocess, offline, on a copy of the shared cache): the
`evaluate` of the tasks (default STSBenchmark, STS12, Banking77Classification, SciFact) with
its bundle, then `verify --recompute` and `verify --rerun --no-embedding-cache` of that
bundle. Prints each command's wall time and the per-task recompute seconds (the scoring of
one task, `import mteb` and the dataset load included in the command's time), and the ratio
recompute / re-run. Target: under 1/10 (exit 1 when missed).

    python benchmarks/recompute_speed.py [--tasks A,B] [--shared ../shared]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kit.machine.hfcache import install_default_model

TASKS = "STSBenchmark,STS12,Banking77Classification,SciFact"
TARGET = 0.1  # recompute / re-run


def _hf_home(shared: Path, dest: Path) -> Path:
    shutil.copytree(shared / "mteb-cache", dest)
    for p in [dest, *dest.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o200)
    install_default_model(dest)
    return dest


def _kit(args: list[str], hf: Path) -> tuple[float, subprocess.CompletedProcess]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HOME=str(hf), HF_HUB_OFFLINE="1", XDG_CACHE_HOME=str(hf.parent / "xdg"))
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "kit", *args], env=env, capture_output=True, text=True
    )
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"repro-kit {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return took, proc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default=TASKS)
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kit-recompute-bench-"))
    try:
        hf = _hf_home(args.shared, work / "hf")
        src = work / "run"
        took, _ = _kit(["evaluate", "--tasks", args.tasks, "-o", str(src), "--offline", "-q"], hf)
        bundle = src.with_suffix(".tar.gz")
        print(f"tasks: {args.tasks}; CPU count {os.cpu_count()}, load {os.getloadavg()[0]:.1f}")
        print(f"evaluate (with its bundle):        {took:8.1f} s")
        base = ["verify", str(bundle), "--allow-unsigned", "--json"]
        rec_s, proc = _kit([*base, "--recompute"], hf)
        rows = json.loads(proc.stdout)["recompute"]
        print(f"verify --recompute:                {rec_s:8.1f} s")
        for r in rows:
            print(f"  {r['task']:<26} {r['seconds']:6.2f} s  {r['compared']} values equal")
        rerun = [*base, "--rerun", "--offline", "--no-embedding-cache"]
        rerun_s, _ = _kit(rerun, hf)
        print(f"verify --rerun (no cache):         {rerun_s:8.1f} s")
        ratio = rec_s / rerun_s
        verdict = "met" if ratio < TARGET else "missed"
        print(f"recompute / re-run: {ratio:.3f} (target < {TARGET:g}: {verdict})")
        return 0 if ratio < TARGET else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
