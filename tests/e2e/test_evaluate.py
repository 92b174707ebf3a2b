"""`repro-kit evaluate` on the real path: real mteb, real model, real data (the long tasks,
SciFact and Banking77Classification, minutes on 2 cores: tests/system/test_long_tasks.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.support import (
    MODEL,
    MODEL_REVISION,
    PLANTED_TOKEN,
    reference_score,
    run_kit,
)


def _record(out: Path) -> dict:
    return json.loads((out / "run.json").read_text())


def _scores(out: Path) -> dict[str, float]:
    return {t["name"]: t["main_score"] for t in _record(out)["tasks"]}


def test_sts_scores_match_published(sts_run: Path) -> None:
    scores = _scores(sts_run)
    assert abs(scores["STSBenchmark"] - reference_score("STSBenchmark")) < 1e-6
    assert abs(scores["STS12"] - reference_score("STS12")) < 1e-6


def test_mteb_reads_the_result_files_unchanged(sts_run: Path) -> None:
    import mteb

    cache = mteb.ResultCache(sts_run)
    res = cache.load_results(models=[MODEL], tasks=["STSBenchmark", "STS12"])
    loaded = {tr.task_name: tr.get_score() for mr in res.model_results for tr in mr.task_results}
    assert set(loaded) == {"STSBenchmark", "STS12"}
    for name, score in _scores(sts_run).items():
        assert abs(loaded[name] - score) < 1e-6  # mteb rounds to 6 digits on disk


def test_run_record_explains_the_score(sts_run: Path) -> None:
    rec = _record(sts_run)
    assert rec["status"] == "complete"
    assert rec["command"][:2] == ["repro-kit", "evaluate"]
    assert rec["resolved"]["revision"] == MODEL_REVISION
    assert rec["model"]["revision_loaded"] == MODEL_REVISION
    assert "model.safetensors" in rec["model"]["files_sha256"]
    assert rec["seeds"] == {"python": 42, "numpy": 42, "torch": 42}
    assert rec["encode"]["batch_size"] == 32 and rec["encode"]["dtype"] == "float32"
    for task in rec["tasks"]:
        ds = task["dataset"]
        assert ds["revision_loaded"] == ds["revision_pinned"]
        assert ds["configs"][0]["files_sha256"], "data files are hashed"
        assert task["duration_seconds"] > 0 and task["status"] == "complete"
    env = json.loads((sts_run / "environment.json").read_text())
    assert env["packages"]["mteb"] == "2.26.24"
    assert env["hardware"]["cpu_count_logical"] >= 1
    assert "float32_matmul_precision" in env["torch"]
    assert env["env_vars"]["HF_HUB_OFFLINE"] == "1"


def test_planted_token_is_recorded_nowhere(sts_run: Path) -> None:
    for path in sts_run.rglob("*"):
        if path.is_file():
            assert PLANTED_TOKEN not in path.read_text(errors="replace"), path
    env = json.loads((sts_run / "environment.json").read_text())
    assert "HF_TOKEN" not in env["env_vars"] and "MY_API_KEY" not in env["env_vars"]


def test_rerun_skips_completed_tasks(sts_run: Path, hf_home: Path, tmp_path: Path) -> None:
    sts_run = shutil.copytree(sts_run, tmp_path / "sts")  # the session's run stays as it was
    before = {p: p.stat().st_mtime_ns for p in (sts_run / "results").rglob("*.json")}
    proc = run_kit(
        ["evaluate", "--tasks", "STSBenchmark,STS12", "-o", str(sts_run), "--offline", "--json"],
        hf_home,
    )
    assert proc.returncode == 0, proc.stderr
    assert {p: p.stat().st_mtime_ns for p in (sts_run / "results").rglob("*.json")} == before
    assert len(_record(sts_run)["resumed_at"]) >= 1


def test_overwrite_starts_afresh(sts_run: Path, hf_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "ow"
    shutil.copytree(sts_run, out)
    proc = run_kit(
        [
            "evaluate",
            "--tasks",
            "STSBenchmark",
            "-o",
            str(out),
            "--offline",
            "-q",
            "--overwrite",
            "--json",
        ],
        hf_home,
    )
    assert proc.returncode == 0, proc.stderr
    rec = _record(out)
    assert [t["name"] for t in rec["tasks"]] == ["STSBenchmark"] and rec["resumed_at"] == []
    assert not (out / "results" / MODEL.replace("/", "__") / MODEL_REVISION / "STS12.json").exists()
    assert rec["tasks"][0]["main_score"] == _scores(sts_run)["STSBenchmark"]
