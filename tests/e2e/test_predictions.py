"""Per-sample predictions end to end: kept by evaluate, bundled, recomputed by verify.

The session's real run of STSBenchmark + STS12 (tests/conftest.py, predictions on by default)
is bundled and checked with `verify --recompute` in a fresh process: offline, datasets from the
HF cache, no model. Two forged bundles cover the cheats: a raw main score raised together with
run.json's and re-signed (plain verify passes, recompute fails 26), two swapped predictions
(26), and predictions recorded as made on another dataset revision (27). Banking77 and SciFact,
and the batch-size compare, run in tests/system/test_long_tasks.py.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

from kit.bundle.predictions import gzip_member
from kit.errors import ExitCode
from kit.fsio import sha256_bytes
from tests.support import run_kit

STSB_REVISION = "b0fddb56ed78048fa8b90373c8a3cfc37b684831"


def _tasks(run: Path) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in json.loads((run / "run.json").read_text())["tasks"]}


def _written_values(value: Any) -> int:
    if isinstance(value, dict):
        return sum(_written_values(v) for v in value.values())
    if isinstance(value, list):
        return sum(_written_values(v) for v in value)
    return 1


def _raw_values(run: Path, task: dict[str, Any]) -> int:
    scores = json.loads((run / task["result_file"]).read_text())["scores"]
    skip = {"hf_subset", "languages", "mteb_version"}
    return sum(
        _written_values(v)
        for es in scores.values()
        for e in es
        for k, v in e.items()
        if k not in skip
    )


def test_the_run_keeps_predictions_bound_to_their_data(sts_run: Path):
    tasks = _tasks(sts_run)
    rows = {"STSBenchmark": 1379, "STS12": 3108}
    for name, n in rows.items():
        block = tasks[name]["predictions"]
        data = (sts_run / block["member"]).read_bytes()
        assert block["member"] == f"predictions/{name}.json.gz" and block["kind"] == "sts"
        assert (block["sha256"], block["bytes"]) == (sha256_bytes(data), len(data))
        doc = json.loads(gzip.decompress(data))
        assert len(doc["default"]["test"]["cosine_scores"]) == n == block["bindings"][0]["rows"]
        assert block["missing"] == [] and block["top_k"] is None
    b = tasks["STSBenchmark"]["predictions"]["bindings"][0]
    assert (b["dataset"], b["revision"], b["split"], b["subset"]) == (
        "mteb/stsbenchmark-sts",
        STSB_REVISION,
        "test",
        "default",
    )
    options = json.loads((sts_run / "run.json").read_text())["options"]
    assert options["predictions"] is True and options["predictions_top_k"] is None


def _copy(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest, ignore=shutil.ignore_patterns(".staging"))
    return dest


def _save_tasks(run: Path, tasks: dict[str, dict[str, Any]]) -> None:
    record = json.loads((run / "run.json").read_text())
    record["tasks"] = [tasks[t["name"]] for t in record["tasks"]]
    (run / "run.json").write_text(json.dumps(record, indent=2))


def _raise_score(run: Path, task: dict[str, Any]) -> float:
    """The cheat: mteb's raw main score and run.json's raised together by 0.01."""
    raw = run / task["result_file"]
    doc = json.loads(raw.read_text())
    entry = doc["scores"]["test"][0]
    claimed = round(entry["main_score"] + 0.01, 6)
    entry["main_score"] = entry["cosine_spearman"] = claimed
    raw.write_text(json.dumps(doc, indent=2))
    task["main_score"] = claimed
    return claimed


def _swap_two(run: Path, task: dict[str, Any]) -> None:
    """Swap the predictions of the most and the least similar pair (and re-record the member)."""
    block = task["predictions"]
    path = run / block["member"]
    doc = json.loads(gzip.decompress(path.read_bytes()))
    lists = doc["default"]["test"]
    cos = lists["cosine_scores"]
    i, j = cos.index(max(cos)), cos.index(min(cos))
    for values in lists.values():
        if values is not None:
            values[i], values[j] = values[j], values[i]
    data = json.dumps(doc).encode()
    path.write_bytes(gzip_member(data))
    block.update(sha256=sha256_bytes(path.read_bytes()), bytes=path.stat().st_size)
    block["json_bytes"] = len(data)


def _keygen(hf_home: Path, tmp_path: Path) -> tuple[Path, Path]:
    key = tmp_path / "key"
    kg = run_kit(["keygen", "-f", str(key), "-C", "me@example.org"], hf_home)
    assert kg.returncode == 0, kg.stderr
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(next(x for x in kg.stdout.splitlines() if "ssh-ed25519" in x) + "\n")
    return key, allowed


def _recompute(bundle: Path, hf_home: Path, *trust: str) -> tuple[int, dict[str, Any], str]:
    proc = run_kit(["verify", str(bundle), *trust, "--recompute", "--json"], hf_home)
    report = json.loads(proc.stdout) if proc.stdout.startswith("{") else {}
    return proc.returncode, report, proc.stdout + proc.stderr


def test_raised_and_resigned_passes_verify_and_fails_recompute(
    sts_run: Path, hf_home: Path, tmp_path: Path
):
    run = _copy(sts_run, tmp_path / "run")
    tasks = _tasks(run)
    claimed = _raise_score(run, tasks["STSBenchmark"])
    _swap_two(run, tasks["STS12"])
    _save_tasks(run, tasks)
    key, allowed = _keygen(hf_home, tmp_path)
    bundle = tmp_path / "forged.tar.gz"
    made = run_kit(["bundle", str(run), "-o", str(bundle), "--sign", str(key)], hf_home)
    assert made.returncode == 0, made.stderr
    plain = run_kit(["verify", str(bundle), "--allowed-signers", str(allowed)], hf_home)
    assert plain.returncode == 0, plain.stdout + plain.stderr  # the records agree, signed
    code, report, out = _recompute(bundle, hf_home, "--allowed-signers", str(allowed))
    assert code == ExitCode.RECOMPUTE_MISMATCH, out
    rows = {r["task"]: r for r in report["recompute"]}
    assert rows["STSBenchmark"]["code"] == rows["STS12"]["code"] == ExitCode.RECOMPUTE_MISMATCH
    main = f"STSBenchmark test/default main_score: raw {claimed!r}, recomputed"
    assert any(m.startswith(main) for m in rows["STSBenchmark"]["mismatches"]), rows
    assert any("STS12 test/default cosine_spearman: raw" in m for m in rows["STS12"]["mismatches"])
    assert "verify failed at recompute STSBenchmark: STSBenchmark test/default " in out


def test_recompute_equals_every_written_value_and_refuses_another_revision(
    sts_run: Path, hf_home: Path, tmp_path: Path
):
    run = _copy(sts_run, tmp_path / "run")
    tasks = _tasks(run)
    tasks["STS12"]["predictions"]["bindings"][0]["revision"] = "0" * 40
    _save_tasks(run, tasks)
    bundle = tmp_path / "b.tar.gz"
    made = run_kit(["bundle", str(run), "-o", str(bundle)], hf_home)
    assert made.returncode == 0, made.stderr
    code, report, out = _recompute(bundle, hf_home, "--allow-unsigned")
    assert code == ExitCode.PREDICTIONS_UNBOUND, out
    rows = {r["task"]: r for r in report["recompute"]}
    stsb = rows["STSBenchmark"]
    assert stsb["ok"] is True and stsb["mismatches"] == [] and stsb["not_recomputable"] == {}
    assert stsb["compared"] == _raw_values(run, tasks["STSBenchmark"]) == 9
    assert rows["STS12"]["code"] == ExitCode.PREDICTIONS_UNBOUND
    assert f"predictions were made on revision '{'0' * 40}'" in rows["STS12"]["reason"]
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["recompute STSBenchmark"]["ok"] is True
    assert (
        "9 values recomputed from predictions, equal" in checks["recompute STSBenchmark"]["reason"]
    )
