"""kit.evaluate.faults: the fault-to-exit-code mapping, real signals in an atomic step, and the
container launcher's codes for a killed container or a lost daemon (with a fake engine)."""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

import pytest

import kit.cli
from kit.container.engine import ContainerSpec, Image
from kit.container.fake import FakeEngine
from kit.container.launch import RunRequest, run_evaluate
from kit.errors import ExitCode, KitError
from kit.evaluate import faults
from kit.evaluate.record import RunRecord
from kit.fsio import atomic_write_text


@pytest.mark.parametrize(
    ("err", "code", "words"),
    [
        (errno.ENOSPC, ExitCode.DISK_FULL, "disk full"),
        (errno.EDQUOT, ExitCode.DISK_FULL, "quota exceeded"),
        (errno.EROFS, ExitCode.OUTPUT, "cannot write"),
        (errno.EACCES, ExitCode.OUTPUT, "cannot write"),
    ],
)
def test_disk_and_permission_faults_name_the_file(err: int, code: int, words: str) -> None:
    exc = OSError(err, os.strerror(err), "/out/run.json")
    fault = faults.translate(exc, Path("/out"), 32)
    assert fault is not None and fault.code == code
    assert words in fault.message and "/out/run.json" in fault.message
    assert "/out resumes" in fault.message
    assert faults.translate(OSError(errno.ENOENT, "x"), None, None) is None


def test_out_of_memory_suggests_a_smaller_batch_and_a_new_folder() -> None:
    import torch

    for exc, kind in ((MemoryError(), "CPU"), (torch.OutOfMemoryError("CUDA oom"), "GPU")):
        fault = faults.translate(exc, Path("/o"), 64)
        assert fault is not None and fault.code == ExitCode.OUT_OF_MEMORY
        assert f"out of {kind} memory" in fault.message
        assert "smaller --batch-size than 64" in fault.message and "new --output" in fault.message
        assert faults.is_resource_fault(exc)


def test_a_real_signal_waits_for_the_atomic_step(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    with faults.graceful_signals(), pytest.raises(faults.Interrupted) as e:
        with faults.atomic_step():
            os.kill(os.getpid(), signal.SIGTERM)
            atomic_write_text(target, "whole\n")  # still written: the step finishes
        pytest.fail("the held-back signal was not raised at the end of the step")
    assert e.value.signal == "SIGTERM" and target.read_text() == "whole\n"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored


def test_record_fault_marks_the_running_task_pending() -> None:
    tasks = [{"name": "A", "status": "complete"}, {"name": "B", "status": "running"}]
    run = RunRecord.from_json({"tasks": tasks})
    exc = faults.Interrupted(signal.SIGINT)
    faults.record_fault(run, exc)
    record = run.to_json()
    assert record["status"] == "interrupted" and record["interruption"]["task"] == "B"
    assert (
        record["interruption"]["signal"] == "SIGINT" and record["tasks"][1]["status"] == "pending"
    )
    fault = faults.translate(exc, Path("/o"), None)
    assert fault is not None and fault.code == ExitCode.INTERRUPTED
    assert "during B" in fault.message and "recorded in /o/run.json" in fault.message


def test_resume_hint_under_slurm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", "12")
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "10")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "2")
    assert "Slurm job 10_2: a requeued job resumes by itself" in faults.resume_hint(Path("/o"))


def test_a_disk_full_escaping_any_command_is_not_an_internal_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "/x/bundle.tar.gz")

    monkeypatch.setattr(kit.cli.cli, "main", full)
    with pytest.raises(SystemExit) as e:
        kit.cli.main()
    assert e.value.code == ExitCode.DISK_FULL
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "disk full writing /x/bundle.tar.gz" in err[0]


IMAGE = Image("sha256:" + "c" * 64, ("img:1",))


def test_a_killed_container_is_docker_and_resumable(tmp_path: Path) -> None:
    engine = FakeEngine((IMAGE,), status=137)
    with pytest.raises(KitError) as e:
        run_evaluate(RunRequest("img:1", output=tmp_path / "o"), print, engine=engine)
    assert e.value.code == ExitCode.DOCKER
    assert "killed (SIGKILL, exit 137)" in e.value.message and "is resumable" in e.value.message
    # the kit's own codes pass through (41: interrupted by `docker stop`)
    engine = FakeEngine((IMAGE,), status=41)
    assert run_evaluate(RunRequest("img:1", output=tmp_path / "o"), print, engine=engine) == 41


def test_a_lost_daemon_says_the_folder_is_resumable(tmp_path: Path) -> None:
    def lost(spec: ContainerSpec) -> None:
        raise KitError("lost the Docker daemon while the container ran (reset)", ExitCode.DOCKER)

    engine = FakeEngine((IMAGE,), on_run=lost)
    with pytest.raises(KitError) as e:
        run_evaluate(RunRequest("img:1", output=tmp_path / "o"), print, engine=engine)
    assert e.value.code == ExitCode.DOCKER and "is resumable" in e.value.message
