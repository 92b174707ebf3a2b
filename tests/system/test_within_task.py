"""evaluate --within-tasks: STSBenchmark split 3 ways by the encoder's batches, then merged.

Real mteb, the real all-MiniLM-L6-v2 and the real STSBenchmark; the three shards run at once,
each its own process (as on three machines), and store their batches in one store. The merge,
which scores the task once from the store with no model, gives every score of the session's
unsharded run exactly (==), and verify checks the plan. A shard left out is named with the
command that computes it again (exit 15). SciFact, a batch size that differs and the
embeddings bit for bit: tests/system/test_within_slurm.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.support import MODEL, REPO, kit_env, run_kit

TASK = "STSBenchmark"
N = 3


def _results(where: Path, name: str) -> dict:
    if where.is_dir():
        return json.loads(next(where.rglob(name)).read_text())
    with tarfile.open(where) as tar:
        names = [m.name for m in tar.getmembers() if m.name.endswith("/" + name)]
        return json.loads(tar.extractfile(min(names, key=len)).read())


@pytest.fixture(scope="module")
def shards(hf_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three within-task shards of STSBenchmark, run at once, bundled (unsigned)."""
    d = tmp_path_factory.mktemp("within")
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kit",
                "evaluate",
                MODEL,
                "--tasks",
                TASK,
                "--shard",
                f"{i}/{N}",
                "--within-tasks",
                "--store",
                str(d / "store"),
                "-o",
                str(d / f"shard-{i}"),
                "--bundle",
                str(d / f"shard-{i}.tar.gz"),
                "--no-sign",
                "--offline",
                "-q",
            ],
            env=kit_env(hf_home, OMP_NUM_THREADS="1"),
            cwd=REPO,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(N)
    ]
    for i, p in enumerate(procs):
        _, err = p.communicate(timeout=900)
        assert p.returncode == 0, f"shard {i}: {err[-3000:]}"
    return d


def test_three_shards_merge_to_the_unsharded_scores(
    shards: Path, sts_run: Path, hf_home: Path
) -> None:
    runs = [json.loads((shards / f"shard-{i}" / "run.json").read_text()) for i in range(N)]
    for run in runs:
        (task,) = run["tasks"]
        assert run["shard"]["split"] == [TASK] and task["status"] == "mapped"
        assert task["within"]["texts"] == 2758  # every shard sees every text of both calls
    computed = [r["tasks"][0]["within"]["computed"] for r in runs]
    assert computed == [30, 29, 29]  # 88 batches of 32 (two calls of 1379), round robin
    bundles = [str(shards / f"shard-{i}.tar.gz") for i in range(N)]
    merged = shards / "merged.tar.gz"
    proc = run_kit(
        [
            "merge",
            *bundles,
            "-o",
            str(merged),
            "--store",
            str(shards / "store"),
            "--allow-unsigned",
        ],
        hf_home,
    )
    assert proc.returncode == 0, proc.stderr
    got, want = _results(merged, f"{TASK}.json"), _results(sts_run, f"{TASK}.json")
    assert got["scores"] == want["scores"]  # every score mteb wrote, exactly
    check = run_kit(["verify", str(merged), "--allow-unsigned", "--json"], hf_home)
    assert check.returncode == 0, check.stdout + check.stderr
    steps = {c["name"]: c for c in json.loads(check.stdout)["checks"]}
    assert steps["within plan"]["ok"] is True and "by 3 shards" in steps["within plan"]["reason"]


def test_a_left_out_shard_is_named_with_its_recovery_command(
    shards: Path, hf_home: Path, tmp_path: Path
) -> None:
    bundles = [str(shards / f"shard-{i}.tar.gz") for i in (0, 2)]
    out = tmp_path / "merged.tar.gz"
    proc = run_kit(
        ["merge", *bundles, "-o", str(out), "--store", str(shards / "store"), "--allow-unsigned"],
        hf_home,
    )
    assert proc.returncode == 15, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(f"repro-kit: error: shard(s) 1/{N} missing (its batches of {TASK})")
    assert f"--tasks {TASK} --shard 1/{N} --within-tasks --store {shards / 'store'}" in line
    assert not out.exists()
