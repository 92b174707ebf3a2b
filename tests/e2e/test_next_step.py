"""The way from a bundle to a results pull request (issue 23), on the session's real runs.

The printed `next:` line of a bundle signed with a key file, run as printed; the refusals a new
user meets (a run folder, a folder that is no results checkout, the kit's own checkout); and
`repro-kit reference` from a results checkout. The quickstart's way and the sweep of bad inputs
take minutes: they are in tests/system/test_new_user.py.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from kit.errors import ExitCode
from kit.verify.reference import published_reference
from tests.support import REPO, kit_env, require_tools, run_kit

VENV_BIN = Path(sys.executable).parent
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def next_line(stdout: str) -> list[str]:
    """The printed `next:` command, split as a shell splits it."""
    lines = [ln for ln in stdout.splitlines() if ln.startswith("next: ")]
    assert len(lines) == 1, stdout
    return shlex.split(lines[0].removeprefix("next: "))


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
