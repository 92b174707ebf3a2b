"""Time to bundle and to verify a run of many tasks (target: both under 1 s for 56 tasks).

Then verify of tampered copies of that bundle (records edited, the file list re-made so only
the records' disagreement is left to find), each refused (target: under 2 s each; the
property test tests/e2e/test_consistency.py checks the verdicts, not the times). Exit 1
when a target is missed.

The run is built from real mteb result files (a finished run folder, default: a fresh
STSBenchmark run made by this script) copied under the 56 task names of "MTEB(eng, v1)".

    python benchmarks/bundle_verify_speed.py [--run RUN_DIR] [--repeats 5]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kit.bundle.write import write_bundle
from kit.machine.hfcache import install_default_model
from kit.signing.policy import AcceptUnsigned
from kit.verify.verified import verify_bundle


def _make_source_run(work: Path, shared: Path) -> Path:
    hf = work / "hf"
    shutil.copytree(shared / "mteb-cache", hf)
    for p in [hf, *hf.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o200)
    install_default_model(hf)
    out = work / "src"
    env = {**os.environ, "HF_HOME": str(hf), "HF_HUB_OFFLINE": "1"}
    subprocess.run(
        [sys.executable, "-m", "kit", "evaluate", "--tasks", "STSBenchmark", "-o", str(out), "-q"],
        env=env,
        check=True,
    )
    return out


def _fan_out(src: Path, dest: Path, tasks: list[Any], benchmark: str) -> Path:
    """A run folder of ``tasks`` (mteb's, of ``benchmark``), each with a real result file.

    Every task gets the splits, subsets, type and main metric mteb defines for it, so the
    bundle is self-consistent (verify's consistency step checks exactly that).
    """
    run = json.loads((src / "run.json").read_text())
    template_task = run["tasks"][0]
    raw = json.loads((src / template_task["result_file"]).read_text())
    entry = next(iter(raw["scores"].values()))[0]
    results = dest / run["results_dir"]
    results.mkdir(parents=True)
    for extra in ("model_meta.json", "run_settings.jsonl"):
        if (src / run["results_dir"] / extra).exists():
            shutil.copy(src / run["results_dir"] / extra, results / extra)
    entries = []
    for i, task in enumerate(tasks):
        name, score = task.metadata.name, round(0.5 + i / 200, 6)
        r = copy.deepcopy(raw)
        r["task_name"] = name
        r["scores"] = {
            split: [{**entry, "hf_subset": s, "main_score": score} for s in task.hf_subsets]
            for split in task.eval_splits
        }
        (results / f"{name}.json").write_text(json.dumps(r, indent=2))
        t = copy.deepcopy(template_task)
        t.update(
            name=name,
            type=task.metadata.type,
            main_metric=task.metadata.main_score,
            eval_splits=list(task.eval_splits),
            main_score=score,
            result_file=f"{run['results_dir']}/{name}.json",
        )
        entries.append(t)
    run["tasks"] = entries
    run["resolved"]["tasks"] = [t["name"] for t in entries]
    run["resolved"]["benchmark"] = benchmark
    (dest / "run.json").write_text(json.dumps(run, indent=2))
    shutil.copy(src / "environment.json", dest / "environment.json")
    return dest


def _relisted(members: dict[str, bytes]) -> dict[str, bytes]:
    """``members`` with the manifest's file list (sizes, digests) re-made for them."""
    from kit.bundle.manifest import MANIFEST, manifest_bytes
    from kit.fsio import sha256_bytes

    manifest = json.loads(members[MANIFEST])
    manifest["files"] = {
        n: {"sha256": sha256_bytes(d), "size": len(d)}
        for n, d in sorted(members.items())
        if n != MANIFEST
    }
    return {**members, MANIFEST: manifest_bytes(manifest)}


def _tampered(bundle: Path) -> dict[str, dict[str, bytes]]:
    """Copies of ``bundle``'s members whose records disagree, each under a name."""
    from kit.bundle.archive import read_bundle_archive

    members = read_bundle_archive(bundle)
    run = json.loads(members["run.json"])
    first = run["tasks"][0]
    edited = copy.deepcopy(run)
    edited["tasks"][0]["main_score"] = first["main_score"] + 1e-6
    unknown = first["result_file"].rsplit("/", 1)[0] + "/STS13.json"
    cases = {
        "score edited in run.json": {**members, "run.json": json.dumps(edited).encode()},
        "result file dropped": {n: d for n, d in members.items() if n != first["result_file"]},
        "result file of a task not run": {**members, unknown: members[first["result_file"]]},
        "extra file": {**members, "extra.json": b"{}"},
    }
    return {name: _relisted(m) for name, m in cases.items()}


def _time_tampered(bundle: Path, work: Path) -> float:
    """Verify each tampered copy (each must be refused); the slowest, in seconds."""
    from kit.bundle.archive import write_deterministic_targz

    slowest = 0.0
    for i, (name, members) in enumerate(_tampered(bundle).items()):
        path = work / f"tampered-{i}.tar.gz"
        write_deterministic_targz(members, path)
        t0 = time.perf_counter()
        report = verify_bundle(path, signature=AcceptUnsigned(None))
        took = time.perf_counter() - t0
        assert not report.ok, f"{name}: passed verify"
        print(f"tampered ({name}): {took * 1000:.0f} ms, exit {int(report.exit_code)}")
        slowest = max(slowest, took)
    return slowest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, help="a finished run folder to take result files from")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    args = ap.parse_args()
    import mteb

    tasks = list(mteb.get_benchmark("MTEB(eng, v1)").tasks)
    work = Path(tempfile.mkdtemp(prefix="kit-bench-"))
    try:
        src = args.run or _make_source_run(work, args.shared)
        run_dir = _fan_out(src, work / "many", tasks, "MTEB(eng, v1)")
        dest = work / "many.tar.gz"
        t_bundle, t_verify = [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            write_bundle(run_dir, dest)
            t_bundle.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            report = verify_bundle(dest, signature=AcceptUnsigned(None))
            t_verify.append(time.perf_counter() - t0)
            assert report.ok, [c for c in report.checks if c.ok is False]
        cli = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "kit", "verify", str(dest), "--allow-unsigned", "--json"],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            cli.append(time.perf_counter() - t0)
        cold_env = {**os.environ, "XDG_CACHE_HOME": str(work / "cold-cache")}
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "kit", "verify", str(dest), "--allow-unsigned", "--json"],
            check=True,
            stdout=subprocess.DEVNULL,
            env=cold_env,
        )
        cold = time.perf_counter() - t0
        print(
            f"tasks: {len(tasks)}; bundle size: {dest.stat().st_size} bytes; "
            f"repeats: {args.repeats}"
        )
        print(
            f"bundle: median {statistics.median(t_bundle) * 1000:.0f} ms "
            f"(max {max(t_bundle) * 1000:.0f} ms)  target < 1000 ms"
        )
        print(
            f"verify: median {statistics.median(t_verify) * 1000:.0f} ms "
            f"(max {max(t_verify) * 1000:.0f} ms)  target < 1000 ms"
        )
        print(
            f"repro-kit verify as a command (Python start and imports included): median "
            f"{statistics.median(cli) * 1000:.0f} ms; with an empty mteb task-layout cache "
            f"(mteb imported once to fill it): {cold * 1000:.0f} ms"
        )
        tampered = _time_tampered(dest, work)
        print(f"tampered bundles: slowest {tampered * 1000:.0f} ms  target < 2000 ms")
        missed = [
            label
            for label, took, target in (
                ("bundle", statistics.median(t_bundle), 1.0),
                ("verify", statistics.median(t_verify), 1.0),
                ("tampered verify", tampered, 2.0),
            )
            if took >= target
        ]
        print(f"targets: {'missed: ' + ', '.join(missed) if missed else 'met'}")
        return 1 if missed else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
