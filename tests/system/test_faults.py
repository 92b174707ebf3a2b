"""Real faults during `repro-kit evaluate` (README, "Faults"): each ends with its documented
code and one line on stderr, and the same command, once the fault is gone, resumes to the
scores of an uninterrupted run (the session fixtures `biosses_run` and `sts_run`).

Faults are real: a tmpfs with 12 KB left for a full disk, a read-only bind mount (root
ignores chmod), SIGTERM sent to the real process, truncated arrow and safetensors files and a
None sentence in a copied HF cache (`docker kill` of a real container:
tests/system/test_faults_container.py), SIGKILL of the whole process group mid-run, and a
"newer" cached dataset revision that datasets would silently take offline.
Where a point cannot be hit by timing (model load, the result move) the kit waits there
(REPRO_KIT_FAULT_PAUSE) and the test sends the signal from outside. The mounts need root:
skipped without it, failed under CI (REPRO_KIT_CI).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kit.errors import ExitCode
from tests.faulttools import BIOSSES_ARROW as ARROW
from tests.faulttools import STS_DATASETS as DATASETS
from tests.faulttools import finish as _finish
from tests.faulttools import no_half_files as _no_half_files
from tests.faulttools import none_sentence as _none_sentence
from tests.faulttools import one_line as _one_line
from tests.faulttools import record as _record
from tests.faulttools import scores as _scores
from tests.faulttools import wait_for as _wait_for
from tests.support import MODEL, MODEL_REVISION, REPO, kit_env, make_hf_home, require, run_kit

SNAPSHOT = "hub/models--sentence-transformers--all-MiniLM-L6-v2/snapshots/8b3219a92973c328a8e22fadcfa821b5dc75636a"  # noqa: E501


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A writable copy of the three tasks' data and the model, for faults to damage."""
    return make_hf_home(tmp_path_factory.mktemp("faults") / "hf", DATASETS)


def _args(out: Path, tasks: str = "BIOSSES") -> list[str]:
    return ["evaluate", "--tasks", tasks, "-o", str(out), "--offline", "-q"]


def _resumes_to(out: Path, cache: Path, reference: dict, tasks: str = "BIOSSES") -> None:
    proc = run_kit(_args(out, tasks), cache)
    assert proc.returncode == 0, proc.stderr
    assert _record(out)["status"] == "complete"
    got = _scores(out)
    assert set(got) == set(tasks.split(","))
    assert got == {t: reference[t] for t in got}


@pytest.fixture(scope="module")
def reference(biosses_run: Path) -> dict:
    return _scores(biosses_run)


def _mount(*args: str) -> None:
    proc = subprocess.run(["mount", *args], capture_output=True, text=True)
    require("mount", proc.returncode == 0, f"as root; here: {proc.stderr.strip()}")


def test_disk_full_on_the_output(cache: Path, reference: dict, tmp_path: Path) -> None:
    mnt = tmp_path / "small"
    mnt.mkdir()
    _mount("-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mnt))  # the whole run fits in it
    try:
        filler = mnt / "filler"
        filler.write_bytes(b"x" * 148 * 1024)  # 12 KB left: run.json fits, the results do not
        out = mnt / "run"
        line = _one_line(run_kit(_args(out), cache), ExitCode.DISK_FULL)
        assert "disk full" in line and str(out) in line and "run the same command" in line
        assert _record(out)["status"] in ("running", "failed")
        _no_half_files(out)
        filler.unlink()  # the fault removed: the same command resumes
        _resumes_to(out, cache, reference)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _start(out: Path, cache: Path, tasks: str = "BIOSSES", **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "kit", *_args(out, tasks)],
        env=kit_env(cache, **env),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_output_made_read_only_mid_run(cache: Path, reference: dict, tmp_path: Path) -> None:
    out, marker = tmp_path / "run", tmp_path / "paused"
    proc = _start(out, cache, REPRO_KIT_FAULT_PAUSE=f"model-load:{marker}")
    try:
        _wait_for(marker.exists, proc)  # run.json written, the model not yet loaded
        _mount("--bind", str(out), str(out))
        _mount("-o", "remount,bind,ro", str(out))
        marker.unlink()  # go on: the results cannot be written
        line = _one_line(_finish(proc), ExitCode.OUTPUT)
        assert "Read-only file system" in line and str(out) in line
    finally:
        subprocess.run(["umount", "-l", str(out)], capture_output=True)
        if proc.poll() is None:
            proc.kill()
    _no_half_files(out)
    _resumes_to(out, cache, reference)


@pytest.mark.parametrize("point", ["model-load", "mid-task", "publish"])
def test_sigterm_is_recorded_and_the_run_resumes(
    point: str, cache: Path, reference: dict, tmp_path: Path
) -> None:
    out, marker = tmp_path / "run", tmp_path / "paused"
    tasks = "BIOSSES,STSBenchmark"
    if point == "mid-task":  # by timing: BIOSSES recorded, STSBenchmark (seconds) under way
        proc = _start(out, cache, tasks)

        def biosses_done() -> bool:
            try:
                return _record(out)["tasks"][0]["status"] == "complete"
            except (OSError, ValueError, KeyError):
                return False

        _wait_for(biosses_done, proc)
        time.sleep(1)
    else:
        proc = _start(out, cache, tasks, REPRO_KIT_FAULT_PAUSE=f"{point}:{marker}")
        _wait_for(marker.exists, proc)
    started = time.time()
    proc.send_signal(signal.SIGTERM)
    line = _one_line(_finish(proc), ExitCode.INTERRUPTED)
    assert "interrupted by SIGTERM" in line and "run the same command to resume" in line

    rec = _record(out)
    assert rec["status"] == "interrupted" and rec["interruption"]["signal"] == "SIGTERM"
    assert rec["interruption"]["at"] >= time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(started - 1))
    status = {t["name"]: t["status"] for t in rec["tasks"]}
    if point == "model-load":
        assert status == {"BIOSSES": "pending", "STSBenchmark": "pending"}
        assert not _scores(out)
    elif point == "mid-task":
        assert rec["interruption"]["task"] == "STSBenchmark" and "during STSBenchmark" in line
        assert status == {"BIOSSES": "complete", "STSBenchmark": "pending"}
        assert set(_scores(out)) == {"BIOSSES"}
    else:  # the signal came between two file moves: the move finished, then the run stopped
        assert status == {"BIOSSES": "complete", "STSBenchmark": "pending"}
        results = next((out / "results").glob("*/*"))
        assert sorted(p.name for p in results.iterdir()) == [
            "BIOSSES.json",
            "model_meta.json",
            "run_settings.jsonl",
        ]
        assert rec["tasks"][0]["main_score"] == pytest.approx(
            json.loads((results / "BIOSSES.json").read_text())["scores"]["test"][0]["main_score"]
        )
    _no_half_files(out)
    _resumes_to(out, cache, reference, tasks)
    assert len(_record(out)["resumed_at"]) == 1


def test_truncated_arrow_file_is_named(cache: Path, reference: dict, tmp_path: Path) -> None:
    arrow = cache / ARROW
    good = arrow.read_bytes()
    try:
        arrow.write_bytes(good[: len(good) // 3])
        out = tmp_path / "run"
        line = _one_line(run_kit(_args(out), cache), ExitCode.CORRUPT_CACHE)
        assert str(arrow) in line and "corrupt or truncated" in line
        assert "repro-kit prefetch --tasks BIOSSES" in line
    finally:
        arrow.write_bytes(good)  # refetched (here: from the shared cache)
    _resumes_to(out, cache, reference)


def test_truncated_model_weights_are_named(cache: Path, reference: dict, tmp_path: Path) -> None:
    weights = cache / SNAPSHOT / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:4_000_000])
    out = tmp_path / "run"
    line = _one_line(run_kit(_args(out), cache), ExitCode.CORRUPT_CACHE)
    assert str(weights) in line and "corrupt or truncated" in line and "delete it" in line
    weights.unlink()  # as the line says: the packaged copy is laid again
    _resumes_to(out, cache, reference)


def test_mteb_failure_in_one_task_lets_the_others_finish(
    cache: Path, reference: dict, sts_run: Path, tmp_path: Path
) -> None:
    arrow = cache / ARROW
    good = arrow.read_bytes()
    tasks = "BIOSSES,STSBenchmark,STS12"
    out = tmp_path / "run"
    try:
        _none_sentence(arrow)
        proc = run_kit([*_args(out, tasks), "--json"], cache)
        line = _one_line(proc, ExitCode.EVALUATION_FAILED)
        assert "1 of 3 task(s) failed" in line and "BIOSSES: mteb failed" in line
    finally:
        arrow.write_bytes(good)
    # the run is still bundled, unsigned and marked partial: verify refuses it unless allowed
    summary = json.loads(proc.stdout)
    assert summary["bundle"]["partial"] == ["BIOSSES"] and not summary["bundle"]["signed"]
    bundle = Path(summary["bundle"]["path"])
    assert bundle == out.with_name("run.tar.gz") and bundle.is_file()
    verify = ["verify", str(bundle), "--allow-unsigned"]
    assert run_kit(verify, cache).returncode == ExitCode.PARTIAL
    assert run_kit([*verify, "--allow-partial"], cache).returncode == 0
    rec = _record(out)
    assert rec["status"] == "failed"
    by_name = {t["name"]: t for t in rec["tasks"]}
    assert by_name["BIOSSES"]["status"] == "failed" and "None" in by_name["BIOSSES"]["error"]
    assert by_name["STSBenchmark"]["status"] == by_name["STS12"]["status"] == "complete"
    assert set(_scores(out)) == {"STSBenchmark", "STS12"}
    _resumes_to(out, cache, {**reference, **_scores(sts_run)}, tasks)


def test_kill_and_resume_gives_same_results(sts_run: Path, hf_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "killed"
    cmd = [
        sys.executable,
        "-m",
        "kit",
        "evaluate",
        "--tasks",
        "STSBenchmark,STS12",
        "-o",
        str(out),
        "--offline",
        "-q",
    ]
    proc = subprocess.Popen(
        cmd,
        env=kit_env(hf_home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    first = out / "results" / MODEL.replace("/", "__") / MODEL_REVISION / "STSBenchmark.json"
    deadline = time.time() + 300
    while not first.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert first.exists(), "first task never finished"
    time.sleep(2.0)  # now inside STS12
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    rec = _record(out)
    assert rec["status"] == "running"  # killed: no chance to say anything else
    assert {t["name"]: t["status"] for t in rec["tasks"]}["STSBenchmark"] == "complete"
    for p in out.rglob("*.json"):
        json.loads(p.read_text())  # nothing half-written
    assert not list(out.rglob("*.tmp"))

    again = run_kit(
        ["evaluate", "--tasks", "STSBenchmark,STS12", "-o", str(out), "--offline", "-q"], hf_home
    )
    assert again.returncode == 0, again.stderr
    assert _scores(out) == _scores(sts_run)
    rec = _record(out)
    assert rec["status"] == "complete" and len(rec["resumed_at"]) == 1
    assert not (out / ".staging").exists()
    whole = {t["name"]: t["predictions"] for t in _record(sts_run)["tasks"]}
    for t in rec["tasks"]:  # each task's predictions kept through the kill, bound to the same data
        block = t["predictions"]
        assert (out / block["member"]).is_file()
        assert block["bindings"] == whole[t["name"]]["bindings"]


def test_newer_cached_dataset_revision_is_refused(tmp_path: Path) -> None:
    """Offline, datasets silently takes the newest cached copy: the kit must notice."""
    home = make_hf_home(tmp_path / "hf", datasets=("mteb___sts12-sts",))
    cfg = home / "datasets" / "mteb___sts12-sts" / "default" / "0.0.0"
    pinned = next(cfg.iterdir())
    fake = cfg / ("f" * 40)
    shutil.copytree(pinned, fake)  # a "newer" revision: same bytes, later mtime
    newer = pinned.stat().st_mtime + 3600
    for p in [fake, *fake.iterdir()]:
        os.utime(p, (newer, newer))
    out = tmp_path / "o"
    proc = run_kit(["evaluate", "--tasks", "STS12", "-o", str(out), "--offline", "-q"], home)
    line = _one_line(proc, ExitCode.REVISION_MISMATCH)
    assert "f" * 40 in line and pinned.name in line and "--allow-revision-mismatch" in line
    rec = json.loads((out / "run.json").read_text())
    assert rec["status"] == "failed" and rec["tasks"][0]["status"] == "failed"
    assert not (
        out / "results" / "sentence-transformers__all-MiniLM-L6-v2" / MODEL_REVISION / "STS12.json"
    ).exists()

    proc = run_kit(
        [
            "evaluate",
            "--tasks",
            "STS12",
            "-o",
            str(out),
            "--offline",
            "-q",
            "--allow-revision-mismatch",
            "--overwrite",
        ],
        home,
    )
    assert proc.returncode == 0, proc.stderr
    rec = json.loads((out / "run.json").read_text())
    assert rec["overrides"] and rec["options"]["allow_revision_mismatch"] is True
    ds = rec["tasks"][0]["dataset"]
    assert ds["revision_mismatch"] is True and ds["revision_loaded"] == "f" * 40
