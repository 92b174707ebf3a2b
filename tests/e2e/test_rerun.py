"""verify --rerun: real re-runs of real bundles (real mteb, the real model and data); in a
container: tests/system/test_rerun_container.py."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from kit.errors import ExitCode, KitError
from kit.rerun.sample import draw
from tests.bundletools import bundle_with_cli as _bundle
from tests.bundletools import fan_out
from tests.support import run_kit


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _key(d: Path, name: str, principal: str) -> tuple[Path, Path]:
    """A throwaway ssh-keygen key and an allowed_signers file naming it."""
    key = d / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    signers = d / f"{name}.allowed"
    signers.write_text(f"{principal} {(d / f'{name}.pub').read_text()}")
    return key, signers


@pytest.fixture(scope="module")
def signed_sts(sts_run: Path, hf_home: Path, tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("signed")
    key, signers = _key(d, "author", "author@example.org")
    return _bundle(sts_run, d / "sts.tar.gz", hf_home, key), signers


def test_rerun_of_shared_tasks_is_identical_and_recorded(
    signed_sts: tuple[Path, Path], hf_home: Path, tmp_path: Path
) -> None:
    bundle, signers = signed_sts
    before = _sha(bundle)
    reviewer, reviewer_signers = _key(tmp_path, "reviewer", "reviewer@example.org")
    out, review = tmp_path / "rerun", tmp_path / "review.tar.gz"
    args = ["verify", str(bundle), "--allowed-signers", str(signers), "--rerun"]
    args += ["STSBenchmark,STS12", "--offline", "--rerun-output", str(out), "--json"]
    proc = run_kit([*args, "--review-bundle", str(review), "--sign", str(reviewer)], hf_home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(proc.stdout)
    manifest = json.loads(
        subprocess.run(["tar", "-xzOf", str(bundle), "manifest.json"], capture_output=True).stdout
    )
    rows = {r["task"]: r for r in data["rerun"]["tasks"]}
    assert set(rows) == {"STSBenchmark", "STS12"}
    for name, r in rows.items():
        assert r["claimed"] == manifest["tasks"][name]["main_score"]
        assert r["rerun"] == r["claimed"] and r["identical"] and r["ok"]  # bit for bit
    # the expected time of each task is shown before it starts
    err = proc.stderr
    for name in rows:
        assert err.index(f"{name:<40} claimed") < err.index(f"re-running {name}: expected ~")
    cache = data["rerun"]["embedding_cache"]
    assert cache["used"] and cache["misses"] > 0 and cache["hits"] == 0
    assert _sha(bundle) == before  # the bundle under review is never modified

    # the review record: a normal, signed bundle naming what it reviewed
    proc2 = run_kit(
        ["verify", str(review), "--allowed-signers", str(reviewer_signers), "--json"], hf_home
    )
    assert proc2.returncode == 0, proc2.stdout
    rec = json.loads(
        subprocess.run(["tar", "-xzOf", str(review), "run.json"], capture_output=True).stdout
    )["review"]
    assert rec["reviewed_bundle"]["sha256"] == before
    member = subprocess.run(["tar", "-xzOf", str(bundle), "manifest.json"], capture_output=True)
    assert rec["reviewed_bundle"]["manifest_sha256"] == hashlib.sha256(member.stdout).hexdigest()
    assert rec["reviewed_bundle"]["signer"]["principals"] == ["author@example.org"]
    assert rec["embedding_cache"]["used"] is True and rec["ok"] is True

    # again into the same folder: a warm cache answers every encode call, scores unchanged
    proc3 = run_kit(args, hf_home)
    assert proc3.returncode == 0, proc3.stderr[-3000:]
    again = json.loads(proc3.stdout)["rerun"]
    assert again["embedding_cache"]["hits"] > 0 and again["embedding_cache"]["misses"] == 0
    for r in again["tasks"]:
        assert r["rerun"] == rows[r["task"]]["claimed"], r
    assert _sha(bundle) == before


def test_forged_score_passes_verify_but_fails_rerun(
    sts_run: Path, hf_home: Path, tmp_path: Path
) -> None:
    forged = tmp_path / "forged"
    shutil.copytree(sts_run, forged)
    run = json.loads((forged / "run.json").read_text())
    entry = next(t for t in run["tasks"] if t["name"] == "STSBenchmark")
    raw_path = forged / entry["result_file"]
    raw = json.loads(raw_path.read_text())
    true_score = raw["scores"]["test"][0]["main_score"]
    raw["scores"]["test"][0]["main_score"] = true_score + 0.02
    raw["scores"]["test"][0]["cosine_spearman"] = true_score + 0.02
    raw_path.write_text(json.dumps(raw, indent=2))
    entry["main_score"] = true_score + 0.02
    (forged / "run.json").write_text(json.dumps(run, indent=2))
    key, signers = _key(tmp_path, "forger", "author@example.org")
    bundle = _bundle(forged, tmp_path / "forged.tar.gz", hf_home, key)
    before = _sha(bundle)

    plain = run_kit(["verify", str(bundle), "--allowed-signers", str(signers)], hf_home)
    assert plain.returncode == 0, plain.stdout  # valid signature, consistent manifest

    args = ["verify", str(bundle), "--allowed-signers", str(signers), "--rerun", "STSBenchmark"]
    proc = run_kit([*args, "--offline", "--no-embedding-cache"], hf_home)
    assert proc.returncode == ExitCode.RERUN_MISMATCH, proc.stdout + proc.stderr[-2000:]
    line = next(x for x in proc.stdout.splitlines() if "│ STSBenchmark " in x)
    assert "-2.00e-02" in line and "FAIL" in line
    assert "environment differences" in proc.stdout
    assert "embedding cache: off: --no-embedding-cache" in proc.stdout
    assert _sha(bundle) == before


def test_rerun_only_after_the_normal_checks_pass(
    signed_sts: tuple[Path, Path], hf_home: Path
) -> None:
    bundle, _ = signed_sts
    proc = run_kit(["verify", str(bundle), "--rerun", "STSBenchmark"], hf_home)
    assert proc.returncode == ExitCode.UNSIGNED  # signed, but no trust anchor given
    assert "re-run" not in proc.stderr + proc.stdout
    proc = run_kit(["verify", str(bundle), "--allow-unsigned", "--rerun", "SciFact"], hf_home)
    assert proc.returncode == ExitCode.NOT_FOUND and "not in the bundle: SciFact" in proc.stderr
    proc = run_kit(["verify", str(bundle), "--allow-unsigned", "--sample", "1"], hf_home)
    assert proc.returncode == ExitCode.USAGE and "--sample needs --rerun" in proc.stderr


def _costs_of(names: list[str]) -> dict[str, float]:
    import mteb

    from kit.evaluate.shard.cost import task_costs

    return {n: c["cost"] for n, c in task_costs(mteb.get_tasks(tasks=names)).items()}


def test_sample_draw_is_seeded_and_prefers_cheap_tasks() -> None:
    import mteb

    names = [t.metadata.name for t in mteb.get_benchmark("MTEB(eng, v1)").tasks]
    costs = _costs_of(names)
    assert len(costs) == 56 and len(set(costs.values())) > 10  # real, varied costs
    assert draw(costs, 2, 1) == draw(dict(reversed(costs.items())), 2, 1)  # order-free
    counts = Counter(n for seed in range(3000) for n in draw(costs, 2, seed))
    by_cost = sorted(costs, key=costs.get)
    cheap, dear = by_cost[:14], by_cost[-14:]
    assert costs[dear[0]] > 10 * costs[cheap[-1]]
    assert sum(counts[n] for n in cheap) > 4 * sum(counts[n] for n in dear)
    assert sum(counts[n] for n in dear) > 0  # expensive tasks keep a chance
    with pytest.raises(KitError):
        draw(costs, 57, 1)


def test_cli_sample_picks_the_same_cheap_tasks_of_a_56_task_bundle(
    sts_run: Path, hf_home: Path, tmp_path: Path
) -> None:
    import mteb

    tasks = mteb.get_benchmark("MTEB(eng, v1)").tasks
    names = [t.metadata.name for t in tasks]
    run = fan_out(sts_run, tmp_path / "wide", list(tasks), "MTEB(eng, v1)", "STSBenchmark")
    bundle = _bundle(run, tmp_path / "wide.tar.gz", hf_home)
    args = ["verify", str(bundle), "--allow-unsigned", "--rerun", "--sample", "2", "--seed", "1"]
    picks = []
    for _ in range(2):
        proc = run_kit([*args, "--dry-run", "--json"], hf_home)
        assert proc.returncode == 0, proc.stderr[-2000:]
        plan = json.loads(proc.stdout)["rerun"]["plan"]
        picks.append([t["task"] for t in plan["tasks"]])
        assert plan["selection"] == {"requested": [], "sample": 2, "seed": 1, "from": 56}
        assert all(t["expected_seconds"] > 0 for t in plan["tasks"])
    assert picks[0] == picks[1] == draw(_costs_of(names), 2, 1)
