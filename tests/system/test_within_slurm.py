"""Within-task sharding through the real Slurm array: STSBenchmark and SciFact split 3 ways.

`WITHIN_TASKS=1 bash deploy/slurm/evaluate-array.sbatch submit` as the README says (RUNTIME=host,
this venv's repro-kit, one read-only HF cache): the plan splits both tasks inside themselves
(each is more than the mean shard); every array task stores its third of their encoder batches
in $OUT/store; the merge job scores them from the store with no model. The merged scores equal
(==) those of the kit's own unsharded run, and every embedding mteb received is the same bit
for bit (tests/withintools.py dumps both sides). A shard left out is named with the command
that computes it again; a shard made at another batch size is refused (both exit 15).
Skipped where no cluster answers, failed under CI. SciFact makes this module take minutes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from tests.support import MODEL, REPO, kit_env, make_hf_home, require, run_kit
from tests.system.conftest import SCIFACT_THREADS, SciFactRun

SBATCH = REPO / "deploy" / "slurm" / "evaluate-array.sbatch"
TASKS = ["STSBenchmark", "SciFact"]
DATASETS = ("mteb___stsbenchmark-sts", "mteb___scifact")
SHARDS = 3
RESOURCES = [f"--cpus-per-task={SCIFACT_THREADS}", "--mem=6G", "--time=60:00"]
SCRUB = ("HF_", "SLURM_", "SBATCH_", "JOB_COMPLETION", "REPRO_KIT_DEBUG")
JOB_TIMEOUT = 3600


def _slurm_up() -> bool:
    if not shutil.which("sbatch") or not shutil.which("scontrol"):
        return False
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=20)
        node = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "UP" in ping.stdout and any(
        s in ("idle", "mixed", "allocated") for s in node.stdout.split()
    )


@pytest.fixture(scope="module", autouse=True)
def slurm() -> None:
    require("slurm", _slurm_up(), "bash scripts/slurm-up.sh")


@pytest.fixture(scope="module")
def caches(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(writable cache, the same read-only through a bind mount, as the shards read it)."""
    d = tmp_path_factory.mktemp("hf")
    src = make_hf_home(d / "src", DATASETS)
    ro = d / "ro"
    ro.mkdir()
    for cmd in (
        ["mount", "--bind", str(src), str(ro)],
        ["mount", "-o", "remount,bind,ro", str(ro)],
    ):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            subprocess.run(["umount", str(ro)], capture_output=True)
            pytest.fail(f"cannot make a read-only bind mount: {proc.stderr.strip()}")
    yield src, ro
    subprocess.run(["umount", "-l", str(ro)], capture_output=True)


def _tools(hf: Path, *args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.withintools", *args],
        capture_output=True,
        text=True,
        env=kit_env(hf, OMP_NUM_THREADS=SCIFACT_THREADS),
        cwd=REPO,
        timeout=JOB_TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def reference(
    caches: tuple[Path, Path], scifact_run: SciFactRun, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The kit's unsharded runs, embeddings dumped (two threads, as the array's tasks): SciFact
    is the session's shared run; STSBenchmark runs here. A folder: run-<task>/, dump/."""
    d = tmp_path_factory.mktemp("unsharded")
    t0 = time.monotonic()
    _tools(caches[0], "plain", "--tasks", "STSBenchmark", "-o", str(d / "run-STSBenchmark"),
           "--dump", str(d / "dump"))  # fmt: skip
    print(f"unsharded STSBenchmark run: {time.monotonic() - t0:.0f} s")
    (d / "run-SciFact").symlink_to(scifact_run.run)
    for npy in scifact_run.dump.glob("SciFact-*.npy"):
        (d / "dump" / npy.name).symlink_to(npy)
    return d


def _env(cache: Path, out: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUB)}
    env.update(
        RUNTIME="host",
        REPRO_KIT=str(Path(sys.executable).parent / "repro-kit"),
        HF_CACHE=str(cache),
        OUT=str(out),
        SHARDS=str(SHARDS),
        TASKS=",".join(TASKS),
        MODEL=MODEL,
        DEVICE="cpu",
        WITHIN_TASKS="1",
    )
    return env


def _wait(*job_ids: str) -> None:
    deadline = time.monotonic() + JOB_TIMEOUT
    while time.monotonic() < deadline:
        q = subprocess.run(
            ["squeue", "-h", "-j", ",".join(job_ids), "-o", "%i %T %r"],
            capture_output=True,
            text=True,
        )
        if q.returncode == 0 and not q.stdout.strip():
            return
        assert "DependencyNeverSatisfied" not in q.stdout, q.stdout
        time.sleep(5)
    pytest.fail(f"jobs {job_ids} still queued after {JOB_TIMEOUT} s")


def _state(job_id: str) -> list[dict[str, str]]:
    out = subprocess.run(
        ["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, check=True
    ).stdout
    return [dict(f.split("=", 1) for f in line.split() if "=" in f) for line in out.splitlines()]


@pytest.fixture(scope="module")
def array(caches: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The README's submit with WITHIN_TASKS=1: the array and the merge job, to the end."""
    d = tmp_path_factory.mktemp("within-array")
    t0 = time.monotonic()
    proc = subprocess.run(
        ["bash", str(SBATCH), "submit", *RESOURCES],
        cwd=d,
        env=_env(caches[1], d / "out"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    array_id = re.search(r"^array job (\d+):", proc.stdout, re.M).group(1)
    merge_id = re.search(r"^merge job (\d+) after it", proc.stdout, re.M).group(1)
    try:
        _wait(array_id, merge_id)
        # read now: Slurm forgets a finished job within minutes (MinJobAge), before the
        # unsharded run below has ended
        states = {r["ArrayTaskId"]: r for r in _state(array_id)}
        (merge,) = _state(merge_id)
    finally:
        subprocess.run(["scancel", array_id, merge_id], capture_output=True)
    print(f"within-task array (3 shards) + merge: {time.monotonic() - t0:.0f} s")
    return {
        "dir": d,
        "out": d / "out",
        "array": array_id,
        "merge": merge_id,
        "states": states,
        "merge_state": merge,
    }


def _result(where: Path, task: str) -> dict:
    if where.is_dir():
        return json.loads(next(where.rglob(f"{task}.json")).read_text())
    with tarfile.open(where) as tar:
        names = [m.name for m in tar.getmembers() if m.name.endswith(f"/{task}.json")]
        return json.loads(tar.extractfile(min(names, key=len)).read())


def test_array_and_merge_equal_the_unsharded_run_bit_for_bit(
    array: dict, reference: Path, caches: tuple[Path, Path]
) -> None:
    d, out = array["dir"], array["out"]
    shards, merge = array["states"], array["merge_state"]
    assert sorted(shards) == ["0", "1", "2"]
    assert all(r["JobState"] == "COMPLETED" for r in shards.values()), shards
    log = (d / f"repro-kit-merge-{array['merge']}.log").read_text()
    assert merge["JobState"] == "COMPLETED", log
    for i in range(SHARDS):
        run = json.loads((out / "runs" / f"shard-{i}" / "run.json").read_text())
        assert run["shard"]["split"] == TASKS and run["shard"]["source"] == "SLURM_ARRAY_TASK_ID"
        assert [t["status"] for t in run["tasks"]] == ["mapped", "mapped"]
    merged = out / "merged.tar.gz"
    for task in TASKS:
        assert _result(merged, task)["scores"] == _result(reference / f"run-{task}", task)["scores"]
    check = run_kit(["verify", str(merged), "--allow-unsigned", "--json"], caches[0])
    assert check.returncode == 0, check.stdout + check.stderr
    bundles = [str(out / "bundles" / f"shard-{i}.tar.gz") for i in range(SHARDS)]
    _tools(
        caches[0],
        "store",
        "--bundles",
        *bundles,
        "--store",
        str(out / "store"),
        "--dump",
        str(d / "dump"),
    )
    same = _tools(caches[0], "compare", str(reference / "dump"), str(d / "dump"))
    assert same["equal"] is True and same["rows_differ"] == 0, same
    assert same["rows"] == 2 * 1379 + 5183 + 300  # STSBenchmark's pairs, SciFact's corpus+queries


def test_a_left_out_shard_is_named_with_its_recovery_command(
    array: dict, caches: tuple[Path, Path], tmp_path: Path
) -> None:
    out = array["out"]
    bundles = [str(out / "bundles" / f"shard-{i}.tar.gz") for i in (0, 2)]
    proc = run_kit(
        [
            "merge",
            *bundles,
            "-o",
            str(tmp_path / "m.tar.gz"),
            "--store",
            str(out / "store"),
            "--allow-unsigned",
        ],
        caches[0],
    )
    assert proc.returncode == 15, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert f"shard(s) 1/{SHARDS} missing (its batches of {', '.join(TASKS)})" in line
    assert f"--shard 1/{SHARDS} --within-tasks --store" in line
    assert not (tmp_path / "m.tar.gz").exists()


def test_a_shard_made_at_another_batch_size_is_refused(
    caches: tuple[Path, Path], tmp_path: Path
) -> None:
    """A plan of STSBenchmark alone (seconds, not SciFact's minutes): shard 1 at batch size 16."""
    store = tmp_path / "store"
    for i, bs in ((0, 32), (1, 16), (2, 32)):
        proc = run_kit(
            [
                "evaluate",
                MODEL,
                "--tasks",
                "STSBenchmark",
                "--shard",
                f"{i}/{SHARDS}",
                "--within-tasks",
                "--store",
                str(store),
                "--batch-size",
                str(bs),
                "-o",
                str(tmp_path / f"s{i}"),
                "--bundle",
                str(tmp_path / f"s{i}.tar.gz"),
                "--no-sign",
                "--offline",
                "-q",
            ],
            caches[0],
            OMP_NUM_THREADS="1",
        )
        assert proc.returncode == 0, proc.stderr
    bundles = [str(tmp_path / f"s{i}.tar.gz") for i in range(SHARDS)]
    out = tmp_path / "m.tar.gz"
    proc = run_kit(
        ["merge", *bundles, "-o", str(out), "--store", str(store), "--allow-unsigned"], caches[0]
    )
    assert proc.returncode == 15, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert "shards disagree on batch size" in line and "32" in line and "16" in line, line
    assert not out.exists()
