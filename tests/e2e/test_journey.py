"""The whole journey (examples/beat-the-baseline/run.sh, README "Beat the baseline") walked
end to end on the real model and data: reproduce, fine-tune, beat, submit, pass review.

The walk is the session's ``journey`` (tests/conftest.py, tests/journeytools.py): two tasks,
60 training steps. Expected values come from the published reference and the bundles, never
typed in; the HTML page in headless Chromium is tests/system/test_report_chromium.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from kit.bundle.archive import read_bundle_archive
from kit.bundle.training import canonical
from kit.evaluate.model.identity import digest_folder
from kit.fsio import sha256_bytes
from kit.runfolder import TRAINING
from tests.journeytools import EXAMPLE, RUN_SH, SIGNER, script_env, start_agent
from tests.support import MODEL, REFERENCE_DIR, reference_score, run_kit

PUBLISHED = REFERENCE_DIR / "sentence-transformers__all-MiniLM-L6-v2.json"


def manifest(bundle: Path) -> dict:
    return json.loads(read_bundle_archive(bundle)["manifest.json"])


def test_run_sh_walks_every_step_and_leaves_out_complete(journey) -> None:
    proc = journey.proc
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for n in range(1, 8):
        assert f"== step {n}: " in proc.stdout
    assert "$ repro-kit evaluate ./ft --model-name" in proc.stdout
    out = journey.out
    for name in ("base.tar.gz", "ft", "ft.tar.gz", "results", "review.json", "report.html"):
        assert (out / name).exists(), name
    assert not out.with_name(out.name + ".partial").exists()
    assert (out / "ft" / TRAINING).is_file()


def test_the_base_reproduces_and_the_fine_tune_beats_it(journey) -> None:
    published = reference_score("STSBenchmark")
    base = manifest(journey.out / "base.tar.gz")["tasks"]["STSBenchmark"]["main_score"]
    assert abs(base - published) < 5e-7  # mteb's 6-digit rounding: the same number
    ft = manifest(journey.out / "ft.tar.gz")["tasks"]["STSBenchmark"]["main_score"]
    assert ft > published + 0.01, (ft, published)
    assert "STSBenchmark: 0.820325, published 0.820325, delta +0.000000 (reproduced)" in (
        journey.proc.stdout
    )


def test_the_bundle_is_signed_through_the_agent_and_verifies(journey, hf_home: Path) -> None:
    allowed = journey.out / "allowed_signers"
    proc = run_kit(["verify", str(journey.out / "ft.tar.gz"), "--allowed-signers", str(allowed),
                    "--json"], hf_home)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    signer = json.loads(proc.stdout)["signer"]
    keygen = ["ssh-keygen", "-l", "-E", "sha256", "-f", str(journey.pub)]
    fingerprint = subprocess.run(keygen, capture_output=True, text=True, check=True).stdout.split()[
        1
    ]
    assert signer["principals"] == [SIGNER] and signer["fingerprint"] == fingerprint
    assert not journey.pub.with_suffix("").exists()  # only the agent held the private key


def test_the_training_record_is_bound_to_the_model_digest(journey) -> None:
    run = json.loads(read_bundle_archive(journey.out / "ft.tar.gz")["run.json"])
    training = run["model"]["training"]
    folder = digest_folder(journey.out / "ft")
    assert run["model"]["digest"] == folder.digest
    on_disk = (journey.out / "ft" / TRAINING).read_bytes()
    assert canonical(training["record"]) == on_disk
    assert {f.path: f.sha256 for f in folder.files}[TRAINING] == sha256_bytes(on_disk)
    rec = training["record"]
    assert (rec["seed"], rec["steps"], rec["batch_size"]) == (42, 60, 16)
    assert rec["data"][0]["mteb_task"] == "STSBenchmark" and rec["data"][0]["split"] == "train"
    assert rec["code"]["commit"] == run["code"]["commit"]  # the code evaluate --code recorded
    assert [x["step"] for x in rec["loss"]] == [10, 20, 30, 40, 50, 60]
    meta = manifest(journey.out / "ft.tar.gz")
    assert meta["training"]["sha256"] == training["sha256"]


def test_review_backs_every_file_and_the_rerun_is_identical(journey) -> None:
    review = json.loads((journey.out / "review.json").read_text())
    files = review["files"]
    assert files and all(f["verdict"] == "backed" for f in files), files
    assert review["exit_code"] == 0
    assert all(f["path"].startswith("results/journey__") for f in files)
    ((model, zero_shot),) = review["zero_shot"].items()  # the fine-tuned model's tasks
    assert model.startswith("journey/") and zero_shot["STSBenchmark"] is False, review["zero_shot"]
    rerun = json.loads((journey.out / "logs" / "rerun.json").read_text())["rerun"]
    assert rerun["ok"] and [t["task"] for t in rerun["tasks"]] == ["STSBenchmark"]
    row = rerun["tasks"][0]
    assert row["identical"] and row["rerun"] == row["claimed"]


def test_the_report_counts_gains_as_wins_and_marks_the_training_task(journey) -> None:
    published = json.loads(PUBLISHED.read_text())["task_main_scores"]
    tasks = manifest(journey.out / "ft.tar.gz")["tasks"]
    deltas = {t: v["main_score"] - published[t] for t, v in tasks.items()}
    wins = sorted(t for t, d in deltas.items() if d > 0.001)
    assert "STSBenchmark" in wins
    mean = sum(deltas.values()) / len(deltas)
    verdict = (
        f"beats the baseline on {len(wins)} of {len(deltas)} tasks (1 not zero-shot), "
        f"mean {mean:+.4f}"
    )
    assert f"   {verdict}" in journey.proc.stdout  # run.sh's key result of step 4
    md = (journey.out / "report.md").read_text()
    assert f"**{verdict}**" in md
    row = [line for line in md.splitlines() if line.startswith("| STSBenchmark |")]
    assert row and row[0].rstrip().endswith("| win (not zero-shot) |"), row
    assert "not zero-shot on STSBenchmark" in md and "FAIL" not in md
    html = (journey.out / "report.html").read_text()
    assert "win (not zero-shot)" in html and "no: trained on it" in html
    assert "local folder, content digest sha256:" in html and ">None<" not in html


def test_compare_names_the_model_files_first_in_short(journey) -> None:
    text = (journey.out / "logs" / "compare.log").read_text()
    assert "{'" not in text and "': '" not in text  # no raw Python dict
    lines = text.splitlines()
    assert len(lines) < 95  # the issue measured 95 lines of dicts
    first = next(i for i, line in enumerate(lines) if line.startswith("│ 1 "))
    assert "model files" in lines[first]
    assert "training record" in text and "zero-shot A / B" in text


def test_a_failing_step_stops_with_its_exit_code_and_writes_no_out(hf_home, tmp_path) -> None:
    agent, sock, pub = start_agent(tmp_path)
    out = tmp_path / "out"
    try:
        env = script_env(hf_home, OUT=str(out), SIGN_KEY=str(pub), SSH_AUTH_SOCK=str(sock),
                         TASKS="NoSuchTask")  # fmt: skip
        proc = subprocess.run(["bash", str(RUN_SH)], env=env, capture_output=True, text=True,
                              timeout=600)  # fmt: skip
    finally:
        agent.terminate()
        agent.wait(timeout=10)
    assert proc.returncode == 3, proc.stderr  # evaluate's code: unknown task
    last = proc.stderr.strip().splitlines()[-1]
    assert re.match(
        r"run\.sh: step 1 \(reproduce .*\) failed with exit 3: repro-kit evaluate ", last
    )
    assert not out.exists() and (tmp_path / "out.partial" / "logs").is_dir()
    again = subprocess.run(["bash", str(RUN_SH)], env={**env, "OUT": str(tmp_path)},
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert again.returncode == 2 and again.stderr.strip().endswith("exists; choose a new OUT")


def test_two_fine_tunes_with_one_seed_have_one_digest(hf_home, tmp_path) -> None:
    code = tmp_path / "trainer"
    code.mkdir()
    (code / "train.py").write_bytes((EXAMPLE / "train.py").read_bytes())
    git = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@x"}  # fmt: skip
    for args in (["init", "-q"], ["add", "train.py"], ["commit", "-q", "-m", "train"]):
        subprocess.run(["git", "-C", str(code), *args], check=True, env=script_env(hf_home, **git))
    digests = []
    for name in ("one", "two"):
        env = script_env(hf_home, OUT=str(tmp_path / name), CODE=str(code), STEPS="3",
                         LR="1e-4", MODEL=MODEL)  # fmt: skip
        proc = subprocess.run([sys.executable, str(code / "train.py")], env=env,
                              capture_output=True, text=True, timeout=900)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        digests.append(digest_folder(tmp_path / name))
    assert digests[0].digest == digests[1].digest, [f.path for f in digests[0].files]
    weights = {f.path: f.sha256 for f in digests[0].files}["model.safetensors"]
    base = digest_folder(hf_home / "hub" / "models--sentence-transformers--all-MiniLM-L6-v2"
                         / "snapshots" / "8b3219a92973c328a8e22fadcfa821b5dc75636a")  # fmt: skip
    assert weights != {f.path: f.sha256 for f in base.files}["model.safetensors"]  # it trained


def test_wall_time_is_printed(journey, capsys) -> None:
    """The walk's wall time, for the e2e budget (README, "Development")."""
    with capsys.disabled():
        print(f"\njourney: run.sh took {journey.seconds:.0f} s")
    assert journey.seconds > 0


def test_evaluate_refuses_a_declaration_the_training_record_contradicts(
    journey, hf_home: Path, tmp_path: Path
) -> None:
    """The journey's ft trained on STSBenchmark (its training.json): declaring STS12 instead is
    refused with one line and exit 2, before any task runs."""
    args = ["evaluate", str(journey.out / "ft"), "--model-name", "journey/x",
            "--training-datasets", "STS12", "--tasks", "STS13", "-o", str(tmp_path / "run"),
            "--offline", "-q", "--no-bundle"]  # fmt: skip
    proc = run_kit(args, hf_home)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("repro-kit: error: "), proc.stderr
    assert "trained on STSBenchmark" in lines[0] and "(STS12) do not name it" in lines[0]
    assert not list((tmp_path / "run").glob("results/*/*/STS13.json"))
