"""Helpers of the fault tests (tests/system/test_faults.py, tests/system/test_faults_container.py,
tests/e2e/test_evaluate_bundle.py): the data they damage, and how a faulted run is checked."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

# Three small STS tasks' data, and BIOSSES's arrow file: what the fault tests damage.
STS_DATASETS = ("mteb___biosses-sts", "mteb___stsbenchmark-sts", "mteb___sts12-sts")
BIOSSES_ARROW = "datasets/mteb___biosses-sts/default/0.0.0/d3fb88f8f02e40887cd149695127462bbcf29b4a/biosses-sts-test.arrow"  # noqa: E501


def none_sentence(arrow: Path) -> None:
    """Rewrite the arrow file with one sentence missing: mteb fails while encoding."""
    import pyarrow as pa

    table = pa.ipc.open_stream(pa.BufferReader(arrow.read_bytes())).read_all()
    schema = table.schema
    col = table.column("sentence1").to_pylist()
    col[50] = None
    table = table.set_column(schema.get_field_index("sentence1"), "sentence1", pa.array(col))
    with pa.OSFile(str(arrow), "wb") as f, pa.ipc.new_stream(f, schema) as w:
        w.write_table(table.cast(schema))


def one_line(proc: subprocess.CompletedProcess, code: int) -> str:
    """The single ``repro-kit: error: ...`` line of a run that exited with ``code``."""
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("repro-kit: error: "), proc.stderr
    return lines[0]


def scores(run: Path) -> dict[str, dict]:
    """Every task's scores (all splits and subsets) as mteb wrote them."""
    return {
        p.stem: json.loads(p.read_text())["scores"]
        for p in (run / "results").glob("*/*/*.json")
        if p.name != "model_meta.json"
    }


def record(run: Path) -> dict:
    """The run folder's run.json."""
    return json.loads((run / "run.json").read_text())


def no_half_files(run: Path) -> None:
    """No temporary file is left and every result file parses."""
    assert not [p for p in run.rglob("*.tmp")], list(run.rglob("*.tmp"))
    for p in (run / "results").rglob("*.json"):
        json.loads(p.read_text())  # every result file parses


def wait_for(cond, proc: subprocess.Popen, timeout: float = 180) -> None:
    """Poll ``cond`` while ``proc`` runs; fail when it ends first or after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the kit never reached the point"
        time.sleep(0.05)


def finish(proc: subprocess.Popen) -> subprocess.CompletedProcess:
    """Wait for ``proc``; its exit code and output."""
    stdout, stderr = proc.communicate(timeout=180)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
