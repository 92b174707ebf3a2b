"""Every user mistake: one line on stderr, a documented exit code, nothing lost."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from kit.errors import ExitCode
from tests.support import run_kit


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _assert_one_line_error(proc, code: ExitCode, *needles: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("repro-kit: error: ")
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize(
    ("args", "code", "needles"),
    [
        (
            ["evaluate", "sentence-transformers/all-MiniLM-L6-v3", "--tasks", "STS12"],
            ExitCode.NOT_FOUND,
            ["all-MiniLM-L6-v3", "Did you mean", "all-MiniLM-L6-v2"],
        ),
        (
            ["evaluate", "--tasks", "STSBenchmar"],
            ExitCode.NOT_FOUND,
            ["STSBenchmar", "Did you mean", "'STSBenchmark'"],
        ),
        (
            ["evaluate", "--benchmark", "MTEB(eng, v3)"],
            ExitCode.NOT_FOUND,
            ["MTEB(eng, v3)", "MTEB(eng, v2)"],
        ),
        (
            ["evaluate", "--tasks", "STS14"],
            ExitCode.DATA_MISSING,
            ["STS14", "mteb/sts14-sts@", "prefetch"],
        ),
        (
            ["evaluate", "--tasks", "STS12", "--benchmark", "MTEB(eng, v2)"],
            ExitCode.USAGE,
            ["not both"],
        ),
    ],
    ids=["unknown-model", "unknown-task", "unknown-benchmark", "offline-data-missing", "both"],
)
def test_bad_names(hf_home: Path, tmp_path: Path, args, code, needles) -> None:
    proc = run_kit([*args, "-o", str(tmp_path / "o"), "--offline", "-q"], hf_home)
    _assert_one_line_error(proc, code, *needles)


def test_click_usage_error_has_exit_2(hf_home: Path) -> None:
    proc = run_kit(["evaluate", "--batch-size", "0"], hf_home)
    assert proc.returncode == ExitCode.USAGE and "Traceback" not in proc.stderr


@pytest.mark.parametrize("where", ["parent-is-file", "proc"])
def test_output_not_writable(hf_home: Path, tmp_path: Path, where: str) -> None:
    if where == "parent-is-file":
        (tmp_path / "afile").write_text("keep me")
        out = tmp_path / "afile" / "run"
    else:
        out = Path("/proc/repro-kit-cannot-write-here")
    proc = run_kit(["evaluate", "--tasks", "STS12", "-o", str(out), "--offline", "-q"], hf_home)
    _assert_one_line_error(proc, ExitCode.OUTPUT, str(out))
    if where == "parent-is-file":
        assert (tmp_path / "afile").read_text() == "keep me"


def test_output_holding_another_models_run(sts_run: Path, hf_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "other"
    shutil.copytree(sts_run, out)
    rec = json.loads((out / "run.json").read_text())
    rec["resolved"]["model"] = "BAAI/bge-small-en-v1.5"
    (out / "run.json").write_text(json.dumps(rec))
    before = _snapshot(out)
    proc = run_kit(["evaluate", "--tasks", "STS12", "-o", str(out), "--offline", "-q"], hf_home)
    _assert_one_line_error(proc, ExitCode.OUTPUT, "BAAI/bge-small-en-v1.5", "--overwrite")
    assert _snapshot(out) == before


def test_resume_with_other_settings_is_refused(sts_run: Path, hf_home: Path, tmp_path: Path):
    out = tmp_path / "settings"
    shutil.copytree(sts_run, out)
    before = _snapshot(out)
    proc = run_kit(
        ["evaluate", "--tasks", "STS12", "-o", str(out), "--offline", "-q", "--batch-size", "8"],
        hf_home,
    )
    _assert_one_line_error(proc, ExitCode.OUTPUT, "batch_size")
    assert _snapshot(out) == before


def test_reranking_without_top_ranked_is_refused() -> None:
    """A reranking task whose top_ranked config was not loaded must not run as retrieval."""
    import mteb

    from kit.errors import KitError
    from kit.evaluate.datasets import check_faithful

    task = mteb.get_task("SciDocsRR")
    task.dataset = {
        "default": {"test": {"corpus": {}, "queries": {}, "relevant_docs": {}, "top_ranked": None}}
    }
    with pytest.raises(KitError) as err:
        check_faithful(task)
    assert err.value.code == ExitCode.UNFAITHFUL_TASK and "top_ranked" in err.value.message
    task.dataset["default"]["test"]["top_ranked"] = {"q1": ["d1"]}
    check_faithful(task)  # with its candidates loaded, the task is faithful
