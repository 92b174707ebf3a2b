"""deploy/k8s/indexed-job.yaml's pod script run per index, then merged (no cluster needed).

No Kubernetes cluster can run here (no image can be pulled): the pod's script (taken from the
manifest) runs as one process per JOB_COMPLETION_INDEX, as the Indexed Job's pods would, on one
read-only HF cache, then the bundles are merged as the manifest's header says. Three real
evaluations at once: with the Slurm array (tests/system/test_slurm.py) in the system tier. The
manifest's schema checks are tests/e2e/test_k8s.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

from tests.support import REPO, make_hf_home, reference_score, run_kit

K8S = REPO / "deploy" / "k8s" / "indexed-job.yaml"
TASKS = ["STS12", "STS13", "BIOSSES", "STSBenchmark"]
DATASETS = ("mteb___sts12-sts", "mteb___sts13-sts", "mteb___biosses-sts", "mteb___stsbenchmark-sts")


def _job() -> dict:
    return yaml.safe_load(K8S.read_text())


def test_indexed_job_pod_script_per_index_then_merge(tmp_path: Path) -> None:
    """Every pod's script from the manifest, JOB_COMPLETION_INDEX 0..N-1, one read-only cache."""
    job = _job()
    container = job["spec"]["template"]["spec"]["containers"][0]
    script = container["args"][0]
    n = job["spec"]["completions"]
    # The pod mounts /out and reads a benchmark; here: a folder and the four STS tasks.
    for old, new in (
        ("/out/", f"{tmp_path}/out/"),
        ('--benchmark "${BENCHMARK}"', '--tasks "${TASKS}"'),
    ):
        assert old in script, f"the pod script no longer has {old!r}"
        script = script.replace(old, new)
    cache = make_hf_home(tmp_path / "hf", DATASETS)
    for p in [cache, *cache.rglob("*")]:  # read-only, as its volume (for a non-root user)
        if not p.is_symlink():
            p.chmod(p.stat().st_mode & ~0o222)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "SLURM_", "JOB_"))}
    env.update({e["name"]: e["value"] for e in container["env"]})
    env.update(
        HF_HOME=str(cache),
        TASKS=",".join(TASKS),
        OMP_NUM_THREADS="1",  # 2 cores here
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    try:
        procs = [
            subprocess.Popen(
                [*container["command"], script],
                env={**env, "JOB_COMPLETION_INDEX": str(i)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=tmp_path,
            )
            for i in range(n)
        ]
        for i, p in enumerate(procs):
            _out, err = p.communicate(timeout=900)
            assert p.returncode == 0, f"pod {i}: {err}"
    finally:
        for p in [cache, *cache.rglob("*")]:
            if not p.is_symlink():
                p.chmod(p.stat().st_mode | 0o200)

    bundles = sorted((tmp_path / "out" / "bundles").glob("shard-*.tar.gz"))
    assert [b.name for b in bundles] == [f"shard-{i}.tar.gz" for i in range(n)]
    merged = tmp_path / "merged.tar.gz"
    proc = run_kit(["merge", *map(str, bundles), "-o", str(merged), "--allow-unsigned"], cache)
    assert proc.returncode == 0, proc.stderr
    check = run_kit(["verify", str(merged), "--allow-unsigned"], cache)
    assert check.returncode == 0, check.stdout + check.stderr
    with tarfile.open(merged) as tar:
        name = min((m.name for m in tar if m.name.endswith("run.json")), key=len)
        run = json.loads(tar.extractfile(name).read())
    assert run["shard"]["count"] == n and sorted(run["shard"]["tasks_all"]) == sorted(TASKS)
    sources = set()
    for i in range(n):
        shard_run = json.loads((tmp_path / "out" / "runs" / f"shard-{i}" / "run.json").read_text())
        assert shard_run["shard"]["spec"] == f"{i}/{n}"
        sources.add(shard_run["shard"]["source"])
    assert sources == {"JOB_COMPLETION_INDEX"}
    summary = json.loads(
        run_kit(["verify", str(merged), "--allow-unsigned", "--json"], cache).stdout
    )
    assert summary["ok"] is True
    scores = _main_scores(tmp_path / "out" / "runs")
    for task in ("STS12", "STS13", "STSBenchmark"):  # data equal to mteb's: published scores
        assert abs(scores[task] - reference_score(task)) < 1e-6, task
    assert set(scores) == set(TASKS)


def _main_scores(runs: Path) -> dict[str, float]:
    scores = {}
    for run_json in runs.glob("shard-*/run.json"):
        for t in json.loads(run_json.read_text())["tasks"]:
            scores[t["name"]] = t["main_score"]
    return scores
