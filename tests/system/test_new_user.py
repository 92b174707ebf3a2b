"""A new user's way from a fresh clone (issue 23): minutes of real runs, so the system tier.

The quickstart in a clone, its printed `next:` line run as printed, a second `evaluate` in a
new shell that followed the README with the hub unreachable (no connection may reach it), and
the bad inputs of the README's tables: one line each, the documented code, no Python exception
class name.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kit.errors import ExitCode
from tests.support import REPO, clean_env, kit_env, run_kit

VENV_BIN = Path(sys.executable).parent


@contextmanager
def unreachable_hub() -> Iterator[tuple[str, list[object]]]:
    """A port that accepts connections and answers none: each connection is recorded."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    hits: list[object] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, addr = server.accept()
            except OSError:
                continue
            hits.append(addr)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}", hits
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


def next_line(stdout: str) -> list[str]:
    """The printed `next:` command, split as a shell splits it."""
    lines = [ln for ln in stdout.splitlines() if ln.startswith("next: ")]
    assert len(lines) == 1, stdout
    return shlex.split(lines[0].removeprefix("next: "))


def new_shell(**extra: str) -> dict[str, str]:
    """A new shell that followed the README: the venv on PATH, no HF settings of its own."""
    env = {k: v for k, v in clean_env().items() if not k.startswith(("HF_", "REPRO_KIT_"))}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def test_quickstart_its_next_line_and_a_second_evaluate_without_the_hub(
    hf_home: Path, tmp_path: Path
) -> None:
    clone = tmp_path / "clone"
    (clone / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "quickstart.sh", clone / "scripts")
    shutil.copy(REPO / "pyproject.toml", clone)  # the folder is a checkout of repro-kit
    # install.sh stands for itself: the venv this test runs in is the one it would make
    (clone / "scripts" / "install.sh").write_text("echo 'install: the test venv'\n")
    xdg = str(hf_home.parent / "xdg-cache")
    first = new_shell(VENV=str(VENV_BIN.parent), HF_SEED_CACHE=str(hf_home), XDG_CACHE_HOME=xdg)
    proc = subprocess.run(["bash", "scripts/quickstart.sh"], cwd=clone, env=first,
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"source {VENV_BIN.parent}/bin/activate" in proc.stdout
    assert "STSBenchmark" in proc.stdout and "0.820325" in proc.stdout
    argv = next_line(proc.stdout)
    bundle = "runs/sentence-transformers__all-MiniLM-L6-v2.tar.gz"
    assert argv == ["repro-kit", "export", bundle, "--results-repo", "../results", "--init",
                    "--allow-unsigned"]  # fmt: skip
    assert (clone / "repro-kit.toml").is_file()
    with unreachable_hub() as (hub, hits):
        shell = new_shell(HF_ENDPOINT=hub, XDG_CACHE_HOME=xdg)
        done = subprocess.run(argv, cwd=clone, env=shell, capture_output=True, text=True,
                              timeout=600)  # fmt: skip
        assert done.returncode == 0, done.stderr
        folder = tmp_path / "results" / "results" / "sentence-transformers__all-MiniLM-L6-v2"
        assert (next(folder.iterdir()) / "STSBenchmark.json").is_file()
        again = subprocess.run(["repro-kit", "evaluate"], cwd=clone, env=shell,
                               capture_output=True, text=True, timeout=600)  # fmt: skip
        assert again.returncode == 0, again.stderr[-3000:]
        assert "0.820325" in again.stdout
    assert hits == [], f"the hub was contacted {len(hits)} times"


CLASS_NAME = re.compile(r"\b[A-Z][a-zA-Z]*(Error|Exception)\b")


def test_bad_inputs_of_the_readme_tables_name_no_exception_class(
    biosses_run: Path, biosses_bundle: Path, hf_home: Path, tmp_path: Path
) -> None:
    """One line each, the documented code, and never a Python exception's class name."""
    bundle, pub = str(biosses_bundle), str(biosses_bundle.parent / "key.pub")
    (tmp_path / "not-a-bundle.tar.gz").write_text("hello")
    (tmp_path / "dup.json").write_text('{"task_main_scores": {"A": 1, "A": 2}}')
    (tmp_path / "existing").write_text("key")
    other = tmp_path / "toml"
    other.mkdir()
    (other / "repro-kit.toml").write_text('[env]\nLD_PRELOAD = "x.so"\n')
    cases = [
        (["evaluate", "--batch-size", "0"], ExitCode.USAGE),
        (["export", bundle, "--public-key", pub], ExitCode.USAGE),  # no --results-repo
        (["evaluate", "--tasks", "STS12", "--benchmark", "MTEB(eng, v2)"], ExitCode.USAGE),
        (["verify", str(biosses_run)], ExitCode.USAGE),
        (["verify", bundle, "--allow-unsigned", "--reference", str(tmp_path / "dup.json")], 2),
        (["verify", str(tmp_path / "missing.tar.gz")], ExitCode.NOT_FOUND),
        (["prefetch", "--tasks", "STSBenchmarkk"], ExitCode.NOT_FOUND),
        (["compare", str(tmp_path / "a"), str(tmp_path / "b")], ExitCode.NOT_FOUND),
        (["report", bundle, "--against", "published:alice/unknown"], ExitCode.NOT_FOUND),
        (["verify", str(tmp_path / "not-a-bundle.tar.gz")], ExitCode.UNSAFE_ARCHIVE),
        (["verify", bundle], ExitCode.UNSIGNED),
        (["keygen", "-f", str(tmp_path / "existing")], ExitCode.KEY_ERROR),
        (["export", bundle, "--public-key", pub, "--results-repo", str(tmp_path / "typo")], 37),
    ]
    for args, code in cases:
        proc = run_kit(args, hf_home)
        assert proc.returncode == code, (args, proc.returncode, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert lines and lines[-1].startswith("repro-kit: "), (args, proc.stderr)
        assert "Traceback" not in proc.stderr and "Usage:" not in proc.stderr, args
        assert not CLASS_NAME.search(proc.stderr), (args, proc.stderr)
    toml = subprocess.run([sys.executable, "-m", "kit", "schema", "run"], cwd=other,
                          env=kit_env(hf_home), capture_output=True, text=True)  # fmt: skip
    assert toml.returncode == ExitCode.USAGE and "LD_PRELOAD" in toml.stderr
    assert len(toml.stderr.strip().splitlines()) == 1
