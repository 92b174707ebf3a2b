"""Three real shards run in parallel, merged, equal one unsharded run; bad merges are refused."""

from __future__ import annotations

import copy
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kit.bundle.archive import read_bundle_archive as load_members
from kit.errors import ExitCode, KitError
from kit.publish.merge import AGREE, ShardBundle, check_shards, load_shard, merge_members
from kit.signing import sshsig
from kit.signing.allowed_signers import load_allowed_signers
from kit.signing.policy import AcceptUnsigned
from kit.verify.verified import require_verified
from tests.bundletools import rename_model
from tests.support import REPO, kit_env, make_hf_home, run_kit

TASKS = ["STSBenchmark", "STS13", "BIOSSES"]
DATASETS = ("mteb___stsbenchmark-sts", "mteb___sts13-sts", "mteb___biosses-sts")
SCHEDULERS = ("SLURM_", "JOB_COMPLETION")
# Shard 0 from a Kubernetes Indexed Job, shard 1 from a Slurm array that starts at 1, shard 2
# from --shard; and one unsharded run of the same tasks. One thread each, as on 2 cores.
JOBS = {
    "s0": (["--shard", "auto", "--shard-count", "3"], {"JOB_COMPLETION_INDEX": "0"}),
    "s1": (
        ["--shard", "auto"],
        {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "3"},
    ),
    "s2": (["--shard", "2/3"], {}),
    "full": ([], {}),
}


def _env(hf_home: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in kit_env(hf_home).items() if not k.startswith(SCHEDULERS)}
    return {**env, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **extra}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("shards")
    shared = make_hf_home(d / "hf", DATASETS)  # the shards load different datasets
    own = make_hf_home(d / "hf-full", DATASETS)  # the unsharded run loads them all
    procs, t0 = {}, time.monotonic()
    for name, (args, extra) in JOBS.items():
        cmd = ["evaluate", "--tasks", ",".join(TASKS), "-o", str(d / name), "--offline", "-q"]
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "kit", *cmd, *args],
            env=_env(own if name == "full" else shared, extra),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    for name, p in procs.items():
        _out, err = p.communicate(timeout=900)
        assert p.returncode == 0, f"{name}: {err}"
    print(f"4 parallel runs: {time.monotonic() - t0:.0f} s")
    return {name: d / name for name in JOBS}


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("key")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "k")], check=True)
    pub = (d / "k.pub").read_text().split()
    (d / "allowed").write_text(f'shards@example.org namespaces="repro-kit" {pub[0]} {pub[1]}\n')
    return d / "k", d / "allowed"


@pytest.fixture(scope="module")
def bundles(runs: dict[str, Path], key, tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bundles")
    out = {}
    for name, run in runs.items():
        out[name] = d / f"{name}.tar.gz"
        sign = ["--sign", str(key[0])] if name != "full" else []
        proc = run_kit(["bundle", str(run), "-o", str(out[name]), *sign], run)
        assert proc.returncode == 0, proc.stderr
    return out


def _run(path: Path) -> dict:
    return json.loads((path / "run.json").read_text())


def _manifest(bundle: Path) -> dict:
    return json.loads(load_members(bundle)["manifest.json"])


def _merge(*args: str | Path, env_dir: Path) -> subprocess.CompletedProcess:
    return run_kit(["merge", *map(str, args)], env_dir)


def test_each_shard_records_where_its_index_came_from(runs: dict[str, Path]) -> None:
    shards = [_run(runs[f"s{i}"])["shard"] for i in range(3)]
    assert [(s["index"], s["count"]) for s in shards] == [(0, 3), (1, 3), (2, 3)]
    assert [s["source"] for s in shards] == [
        "JOB_COMPLETION_INDEX",
        "SLURM_ARRAY_TASK_ID",
        "--shard",
    ]
    assert all(
        s["tasks_all"] == TASKS and s["assignment"] == shards[0]["assignment"] for s in shards
    )
    assert sorted(t for s in shards for t in s["tasks"]) == sorted(TASKS)
    for i, s in enumerate(shards):
        run = _run(runs[f"s{i}"])
        assert run["resolved"]["tasks"] == s["tasks"] == [t["name"] for t in run["tasks"]]
        assert s["tasks"] == s["assignment"][i] and set(s["costs"]) == set(TASKS)
    assert "shard" not in _run(runs["full"])


def test_merged_bundle_equals_one_unsharded_run(bundles, key, tmp_path: Path) -> None:
    merged = tmp_path / "merged.tar.gz"
    shards = [bundles["s2"], bundles["s0"], bundles["s1"]]  # any order
    trust = ["--allowed-signers", str(key[1])]
    proc = _merge(*shards, "-o", merged, *trust, "--sign", key[0], env_dir=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "3 shards, 3 tasks" in proc.stdout and "signed" in proc.stdout
    check = run_kit(["verify", str(merged), *trust, "--json"], tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert json.loads(check.stdout)["ok"] is True

    m, full = _manifest(merged), _manifest(bundles["full"])
    assert m["tasks"] == full["tasks"]  # every split/subset score, exactly
    assert m["aggregates"] == full["aggregates"]  # exact float equality, same machine
    assert m["tasks_requested"] == full["tasks_requested"] == TASKS
    assert m["model"] == full["model"]

    members = load_members(merged)
    run = json.loads(members["run.json"])
    plan = run["shard"]
    assert plan["index"] is None and plan["tasks_all"] == TASKS and plan["count"] == 3
    assert {t["name"]: t["shard"] for t in run["tasks"]} == {
        t: i for i, b in enumerate(plan["assignment"]) for t in b
    }
    allowed = load_allowed_signers(key[1])
    for i in range(3):  # each shard's own signature still checks, from the merged bundle alone
        shard_manifest = members[f"shards/{i}/manifest.json"]
        sig = members[f"shards/{i}/manifest.json.sig"].decode()
        sshsig.verify(shard_manifest, sig, allowed_signers=allowed)
        for name, meta in json.loads(shard_manifest)["files"].items():
            if name.endswith(".json") and name.startswith("results/") and "model_meta" not in name:
                assert meta["sha256"] == m["files"][name]["sha256"]
        assert members[f"shards/{i}/run.json"] == load_members(bundles[f"s{i}"])["run.json"]

    cmp = run_kit(["compare", str(merged), str(bundles["full"]), "--json"], tmp_path)
    assert cmp.returncode == 0, cmp.stderr
    assert {d["task"]: d["delta"] for d in json.loads(cmp.stdout)["tasks"]} == dict.fromkeys(
        TASKS, 0.0
    )


def _shard(path: Path) -> ShardBundle:
    """A shard bundle, verified (unsigned accepted) as the merge command does."""
    return load_shard(require_verified(path, AcceptUnsigned(None), "refusing to merge"))


def test_merge_is_deterministic_and_independent_of_order(bundles) -> None:
    shards = [_shard(bundles[f"s{i}"]) for i in range(3)]
    first = merge_members(shards, ["repro-kit", "merge"])
    shuffled = shards[:]
    random.Random(7).shuffle(shuffled)
    assert merge_members(list(reversed(shards)), ["repro-kit", "merge"]) == first
    assert merge_members(shuffled, ["repro-kit", "merge"]) == first


def test_missing_shard_is_refused_naming_it(bundles, runs, tmp_path: Path) -> None:
    proc = _merge(
        bundles["s0"],
        bundles["s1"],
        "-o",
        tmp_path / "m.tar.gz",
        "--allow-unsigned",
        env_dir=tmp_path,
    )
    assert proc.returncode == ExitCode.SHARDS, proc.stderr
    missing = _run(runs["s2"])["shard"]["tasks"]
    assert "missing shard(s) 2/3" in proc.stderr and all(t in proc.stderr for t in missing)
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "m.tar.gz").exists()


def test_duplicated_task_is_refused(bundles, runs, tmp_path: Path) -> None:
    args = [bundles["s0"], bundles["s1"], bundles["s0"], bundles["s2"]]
    proc = _merge(*args, "-o", tmp_path / "m.tar.gz", "--allow-unsigned", env_dir=tmp_path)
    assert proc.returncode == ExitCode.SHARDS, proc.stderr
    assert "shard 0/3 given twice" in proc.stderr
    assert all(t in proc.stderr for t in _run(runs["s0"])["shard"]["tasks"])


def test_shards_of_another_model_are_refused(bundles, runs, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(runs["s2"], other)
    rename_model(other, "sentence-transformers/all-MiniLM-L12-v2")  # consistently: it verifies
    tampered = tmp_path / "other.tar.gz"
    assert run_kit(["bundle", str(other), "-o", str(tampered)], tmp_path).returncode == 0
    proc = _merge(
        bundles["s0"],
        bundles["s1"],
        tampered,
        "-o",
        tmp_path / "m.tar.gz",
        "--allow-unsigned",
        env_dir=tmp_path,
    )
    assert proc.returncode == ExitCode.SHARDS, proc.stderr
    assert "shards disagree on model:" in proc.stderr and "all-MiniLM-L12-v2" in proc.stderr


@pytest.mark.parametrize(
    ("label", "where", "value"),
    [
        ("model revision", ("run", "resolved", "revision"), "0" * 40),
        ("batch size", ("run", "resolved", "batch_size"), 64),
        ("precision", ("run", "resolved", "precision"), "fp16"),
        ("seed", ("run", "resolved", "seed"), 7),
        ("device kind", ("run", "resolved", "device_kind"), "cuda"),
        ("kit version", ("run", "kit_version"), "9.9.9"),
        ("image lockfile", ("env", "container"), {"image": {"lockfile_sha256": "ab" * 32}}),
        ("full task list", ("run", "shard", "tasks_all"), ["STSBenchmark", "STS13"]),
    ],
)
def test_shards_must_agree_on_what_affects_scores(bundles, label, where, value) -> None:
    assert label in {a[0] for a in AGREE}
    shards = [_shard(bundles[f"s{i}"]) for i in range(3)]
    altered = copy.deepcopy(shards[1])
    target = getattr(altered, where[0])
    for k in where[1:-1]:
        target = target[k]
    target[where[-1]] = value
    with pytest.raises(KitError) as e:
        check_shards([shards[0], altered, shards[2]])
    assert e.value.code == ExitCode.SHARDS and f"shards disagree on {label}:" in e.value.message
    assert isinstance(altered, ShardBundle) and check_shards(shards)


def test_untrusted_unsigned_and_unsharded_bundles_are_refused(bundles, tmp_path: Path) -> None:
    shards = [bundles[f"s{i}"] for i in range(3)]
    proc = _merge(*shards, "-o", tmp_path / "m.tar.gz", env_dir=tmp_path)
    assert proc.returncode == ExitCode.UNSIGNED and "s0.tar.gz: signature:" in proc.stderr
    proc = _merge(
        bundles["full"],
        *shards[1:],
        "-o",
        tmp_path / "m.tar.gz",
        "--allow-unsigned",
        env_dir=tmp_path,
    )
    assert proc.returncode == ExitCode.SHARDS and "not a shard bundle" in proc.stderr
    assert not (tmp_path / "m.tar.gz").exists()


def test_a_shard_folder_resumes_only_the_same_shard(runs: dict[str, Path]) -> None:
    args = ["evaluate", "--tasks", ",".join(TASKS), "-o", str(runs["s2"]), "--offline", "-q"]
    scrub = {k: "" for k in os.environ if k.startswith(SCHEDULERS)}
    proc = run_kit([*args, "--shard", "1/3"], runs["s2"], **scrub)
    assert proc.returncode == ExitCode.OUTPUT and "holds shard 2/3, not shard 1/3" in proc.stderr
