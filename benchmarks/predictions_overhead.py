"""What keeping mteb's predictions costs: evaluate's time with and without, and the sizes.

Each task is evaluated with and without `--no-predictions` in the order ABBA per repeat (the
CLI in a subprocess, offline, on a copy of the shared cache, no bundle), and the CPU time of
the child (user + system, all threads) and its wall time are taken; identical runs on a
loaded machine differ by more than the feature costs, so CPU time and the median are what
to read; so the kit's own share (``collect``: read, check, bind, gzip) is also timed in
process on the run's predictions. Then per task the predictions member's size (gzip) and its
JSON size. Target: under 2 % more CPU time, end to end or, when the end-to-end difference is
lost in the noise, the kit's share (exit 1 when both miss).

    python benchmarks/predictions_overhead.py [--tasks A,B] [--repeats 2] [--shared ../shared]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kit.machine.hfcache import install_default_model

TASKS = ("STSBenchmark", "Banking77Classification")
TARGET = 0.02


def _hf_home(shared: Path, dest: Path) -> Path:
    shutil.copytree(shared / "mteb-cache", dest)
    for p in [dest, *dest.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o200)
    install_default_model(dest)
    return dest


def _evaluate(task: str, out: Path, hf: Path, predictions: bool) -> tuple[float, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HOME=str(hf), HF_HUB_OFFLINE="1", XDG_CACHE_HOME=str(hf.parent / "xdg"))
    args = ["evaluate", "--tasks", task, "-o", str(out), "--offline", "-q", "--no-bundle"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "kit", *args, *([] if predictions else ["--no-predictions"])],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"evaluate {task} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _collect_cpu(task: str, run: Path, hf: Path, scratch: Path) -> float:
    """CPU seconds of ``kit.evaluate.predictions.collect`` on the run's own predictions, in
    this process with the task's data loaded: the kit's share, free of the run-to-run noise
    (mteb's own ``json.dump`` of the file is milliseconds: notes in README)."""
    import gzip

    os.environ.update(HF_HOME=str(hf), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    import mteb

    from kit.evaluate import predictions as pred

    block = json.loads((run / "run.json").read_text())["tasks"][0]["predictions"]
    scratch.mkdir(parents=True, exist_ok=True)
    data = gzip.decompress((run / block["member"]).read_bytes())
    pred.mteb_file(scratch, task).write_bytes(data)
    t = mteb.get_task(task)
    t.load_data()
    pairs = [(b["split"], b["subset"]) for b in block["bindings"]]
    start = time.process_time()
    pred.collect(t, scratch, pairs, block["top_k"], block["bindings"][0]["revision"])
    return time.process_time() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kit-pred-bench-"))
    missed = []
    try:
        hf = _hf_home(args.shared, work / "hf")
        print(f"CPU count {os.cpu_count()}, load {os.getloadavg()[0]:.1f}; ABBA x {args.repeats}")
        for task in args.tasks.split(","):
            _evaluate(task, work / "warmup", hf, True)  # untimed: datasets' first load
            got: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
            for i in range(args.repeats):
                for j, with_pred in enumerate((True, False, False, True)):
                    out = work / f"{task}-{i}-{j}"
                    got[with_pred].append(_evaluate(task, out, hf, with_pred))
            for k, v in got.items():
                runs = ", ".join(f"{c:.1f} s CPU / {w:.1f} s wall" for w, c in v)
                print(f"  {task} {'with' if k else 'without'} predictions: {runs}")
            cpu = {k: statistics.median(c for _, c in v) for k, v in got.items()}
            wall = {k: statistics.median(w for w, _ in v) for k, v in got.items()}
            extra = cpu[True] / cpu[False] - 1
            run = json.loads((work / f"{task}-0-0" / "run.json").read_text())
            block = run["tasks"][0]["predictions"]
            print(
                f"{task}: CPU {cpu[True]:.1f} s with, {cpu[False]:.1f} s without ({extra:+.1%}); "
                f"wall {wall[True]:.1f} s / {wall[False]:.1f} s; member {block['bytes']:,} B "
                f"gzip, {block['json_bytes']:,} B JSON, rows "
                f"{[b['rows'] for b in block['bindings']]}"
            )
            kit_cpu = _collect_cpu(task, work / f"{task}-0-0", hf, work / f"{task}-collect")
            print(
                f"  what the kit adds per task (read, check, bind, gzip): {kit_cpu:.3f} s CPU, "
                f"{kit_cpu / cpu[False]:.2%} of the run without predictions"
            )
            if extra >= TARGET and kit_cpu / cpu[False] >= TARGET:
                missed.append(task)
        verdict = "missed by " + ", ".join(missed) if missed else "met"
        print(f"target < {TARGET:.0%} more CPU: {verdict}")
        return 1 if missed else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
