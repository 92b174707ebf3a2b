"""The way from evaluate to a results pull request, as a new user walks it (issue 23).

The quickstart in a clone, its printed `next:` line run as printed, a second evaluate in a new
shell with the hub unreachable, the export of a bundle signed with a key file, the refusals a
new user meets (a run folder, a folder that is no results checkout, the kit's own checkout),
and `repro-kit reference` from a results checkout.
"""

from __future__ import annotations

import json
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
from kit.verify.reference import published_reference
from tests.support import REPO, clean_env, kit_env, require_tools, run_kit

VENV_BIN = Path(sys.executable).parent
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


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


def test_bundle_with_a_key_file_prints_an_export_that_runs(
    biosses_run: Path, hf_home: Path, tmp_path: Path
) -> None:
    require_tools("ssh-keygen", how="apt-get install openssh-client")
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "me@example.org",
                    "-f", str(key)], check=True)  # fmt: skip
    work = tmp_path / "work"
    work.mkdir()
    env = {**kit_env(hf_home), "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("REPRO_KIT_SIGNING_KEY", None)
    cmd = ["repro-kit", "bundle", str(biosses_run), "-o", "b.tar.gz", "--sign", str(key)]
    made = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    argv = next_line(made.stdout)
    assert argv[-2:] == ["--public-key", f"{key}.pub"] and argv[2] == "b.tar.gz"
    done = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert list((work / "results" / "results").glob("*/*/BIOSSES.json"))


def _one_line(proc: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("repro-kit: error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_a_run_folder_and_folders_that_are_no_results_checkout(
    biosses_run: Path, biosses_bundle: Path, hf_home: Path, tmp_path: Path
) -> None:
    _one_line(run_kit(["verify", str(biosses_run)], hf_home), ExitCode.USAGE,
              f"a run folder: bundle it first (repro-kit bundle {biosses_run})")  # fmt: skip
    trust = ["--public-key", str(biosses_bundle.parent / "key.pub")]
    export = ["export", str(biosses_bundle), *trust, "--results-repo"]
    typo = tmp_path / "resutls"
    _one_line(run_kit([*export, str(typo)], hf_home), ExitCode.NOT_RESULTS_CHECKOUT,
              "not a results checkout (no such folder)", "--init")  # fmt: skip
    assert not typo.exists()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    for extra in ([], ["--init"]):
        _one_line(run_kit([*export, str(busy), *extra], hf_home), ExitCode.NOT_RESULTS_CHECKOUT)
    assert [p.name for p in busy.iterdir()] == ["notes.txt"]
    own = REPO / "results"
    existed = own.exists()
    _one_line(run_kit([*export, str(own), "--init"], hf_home), ExitCode.NOT_RESULTS_CHECKOUT,
              "inside repro-kit's own checkout")  # fmt: skip
    assert own.exists() == existed


def _results_checkout(reference: dict, root: Path) -> Path:
    """A results checkout holding one mteb result file per row of a reference."""
    import mteb

    repo = root / "results-checkout"
    folder = repo / "results" / MINILM.replace("/", "__")
    for row in reference["rows"]:
        task = mteb.get_task(row["task"])
        languages = task.metadata.hf_subsets_to_langscripts.get(row["subset"], ["eng-Latn"])
        result = {
            "dataset_revision": row["dataset_revision"],
            "task_name": row["task"],
            "mteb_version": row["mteb_version"] or "1.12.0",
            "scores": {
                row["split"]: [
                    {
                        "hf_subset": row["subset"],
                        "languages": languages,
                        "main_score": row["main_score"],
                    }
                ]
            },
            "evaluation_time": 1.0,
            "kg_co2_emissions": None,
        }
        dest = folder / row["model_revision"] / f"{row['task']}.json"
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(json.dumps(result, indent=2))
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "results"], check=True)
    return repo


def test_reference_from_a_results_checkout_equals_the_shipped_one(
    hf_home: Path, tmp_path: Path
) -> None:
    shipped = json.loads(published_reference(MINILM).read_text())
    repo = _results_checkout(shipped, tmp_path)
    dest = tmp_path / "ref.json"
    proc = run_kit(["reference", MINILM, "--results-repo", str(repo), "-o", str(dest)], hf_home)
    assert proc.returncode == 0, proc.stderr
    built = json.loads(dest.read_text())
    assert built["task_main_scores"] == shipped["task_main_scores"]
    assert built["missing"] == shipped["missing"] == []
    for bench, means in shipped["aggregates"].items():
        for key in ("n_tasks", "n_with_scores", "missing"):
            assert built["aggregates"][bench][key] == means[key]
        assert abs(built["aggregates"][bench]["mean_task"] - means["mean_task"]) < 1e-12
    keys = ("task", "split", "subset", "main_score", "model_revision", "dataset_revision")
    assert [{k: r[k] for k in keys} for r in built["rows"]] == [
        {k: r[k] for k in keys} for r in shipped["rows"]
    ]
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    assert built["results_commit"] == head and built["model"] == MINILM
    assert re.fullmatch(rf"\S+@{head}:results/{MINILM.replace('/', '__')}/\w+/\S+\.json",
                        built["rows"][0]["source"])  # fmt: skip


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
