"""Time `repro-kit review` of a pull request bringing 10 signed bundles of 56 tasks each (target:
under 5 s, in-process, mteb imported; the import and the whole command are printed beside it).

The bundles are made as benchmarks/bundle_verify_speed.py makes its 56-task bundle: a real
STSBenchmark result file (a finished run folder, default: a fresh run made by this script)
copied under the 56 task names of "MTEB(eng, v1)", each task with mteb's splits, subsets,
type and main metric, scored 0.5 + i/200. Each of the 10 bundles is that run renamed to one
of mteb's registered models (so the repository's registry rule passes), signed with a
throwaway key. The results repository: a base commit holding another model's folder, and a
pull-request branch made by exporting the 10 bundles and committing; the review must find
every file backed and every rule passing (exit 0), else this exits 1 as for a missed target.

    python benchmarks/review_speed.py [--run RUN_DIR] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BUNDLES = 10
TARGET_S = 5.0
BENCHMARK = "MTEB(eng, v1)"


def _make_source_run(work: Path, shared: Path) -> Path:
    from kit.machine.hfcache import install_default_model

    hf = work / "hf"
    shutil.copytree(shared / "mteb-cache", hf)
    for p in [hf, *hf.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o200)
    install_default_model(hf)
    out = work / "src"
    env = {**os.environ, "HF_HOME": str(hf), "HF_HUB_OFFLINE": "1"}
    args = ["evaluate", "--tasks", "STSBenchmark", "-o", str(out), "-q", "--no-bundle"]
    subprocess.run([sys.executable, "-m", "kit", *args], env=env, check=True)
    return out


def _fan_out(src: Path, dest: Path, tasks: list[Any], model: str, revision: str) -> Path:
    """A run folder of ``tasks`` for ``model``@``revision``, each a copy of a real result file."""
    from kit.runfolder import MODEL_META, RUN, model_as_path

    run = json.loads((src / RUN).read_text())
    template = next(t for t in run["tasks"] if t["name"] == "STSBenchmark")
    raw = json.loads((src / template["result_file"]).read_text())
    entry = next(iter(raw["scores"].values()))[0]
    folder = f"results/{model_as_path(model)}/{revision}"
    (dest / folder).mkdir(parents=True)
    meta = json.loads((src / run["results_dir"] / MODEL_META).read_text())
    meta.update(name=model, revision=revision)
    (dest / folder / MODEL_META).write_text(json.dumps(meta, indent=4))
    entries = []
    for i, task in enumerate(tasks):
        name, score = task.metadata.name, round(0.5 + i / 200, 6)
        r = copy.deepcopy(raw) | {"task_name": name}
        r["scores"] = {
            split: [{**entry, "hf_subset": s, "main_score": score} for s in task.hf_subsets]
            for split in task.eval_splits
        }
        (dest / folder / f"{name}.json").write_text(json.dumps(r, indent=2))
        t = copy.deepcopy(template)
        t.update(
            name=name,
            type=task.metadata.type,
            main_metric=task.metadata.main_score,
            eval_splits=list(task.eval_splits),
            main_score=score,
            result_file=f"{folder}/{name}.json",
        )
        if "predictions" in t:
            t["predictions"] = {"kind": None, "member": None, "reason": "a fanned-out copy"}
        entries.append(t)
    run.update(tasks=entries, results_dir=folder)
    run["resolved"].update(tasks=[t["name"] for t in entries], benchmark=BENCHMARK)
    run["resolved"].update(model=model, revision=revision)
    run["options"]["model"] = model
    if run.get("model"):
        run["model"].update(name=model, revision_requested=revision, revision_loaded=revision)
    (dest / RUN).write_text(json.dumps(run, indent=2))
    shutil.copy(src / "environment.json", dest / "environment.json")
    return dest


def _models(n: int) -> list[tuple[str, str]]:
    """``n`` models of mteb's registry with an organisation and a 40-hex revision."""
    import mteb

    sha = re.compile(r"^[0-9a-f]{40}$")
    found = sorted(
        (m.name, m.revision)
        for m in mteb.get_model_metas()
        if m.name and "/" in m.name and m.revision and sha.match(m.revision)
    )
    return found[:n]


def _git(repo: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@e"}
    env |= {"GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@e"}
    subprocess.run(["git", "-C", str(repo), *args], env=env, check=True, capture_output=True)


def _pull_request(work: Path, src: Path, bundles: list[Path], policy: Any) -> Path:
    """A results repository: another model on main, the bundles exported on branch ``pr``."""
    from kit.publish.export import export_bundle
    from kit.verify.verified import require_verified

    repo = work / "results"
    other = repo / "results" / "other-org__other-model" / ("0" * 40)
    other.mkdir(parents=True)
    shutil.copy(next((src / "results").rglob("STSBenchmark.json")), other / "STSBenchmark.json")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "base")
    _git(repo, "checkout", "-q", "-b", "pr")
    for bundle in bundles:
        export_bundle(require_verified(bundle, policy, "refusing to export"), repo)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "pull request")
    return repo


def _bundles(work: Path, src: Path, tasks: list[Any]) -> tuple[list[Path], Path]:
    from kit.bundle.write import write_bundle
    from kit.signing.keys import generate_keypair, load_private_key
    from kit.signing.sshsig import FileKeySigner, sign_with

    key = work / "key"
    generate_keypair(key, comment="bench")
    signer = FileKeySigner(load_private_key(key))
    allowed = work / "allowed_signers"
    allowed.write_text(f"bench@example.org {(work / 'key.pub').read_text().strip()}\n")
    out = []
    for i, (model, revision) in enumerate(_models(BUNDLES)):
        run = _fan_out(src, work / f"run{i}", tasks, model, revision)
        dest = work / f"bundle{i}.tar.gz"
        write_bundle(run, dest, lambda data: sign_with(signer, data))
        out.append(dest)
    return out, allowed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, help="a finished run folder holding STSBenchmark")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    args = ap.parse_args()
    t0 = time.perf_counter()
    import mteb

    imported = time.perf_counter() - t0
    from kit.publish.review.reviewer import review_pull_request
    from kit.signing.policy import policy_for

    work = Path(tempfile.mkdtemp(prefix="kit-review-bench-"))
    try:
        src = args.run or _make_source_run(work, args.shared)
        tasks = list(mteb.get_benchmark(BENCHMARK).tasks)
        bundles, allowed = _bundles(work, src, tasks)
        policy = policy_for(allowed_signers=allowed)
        repo = _pull_request(work, src, bundles, policy)
        sources = [str(b) for b in bundles]
        times, result = [], None
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            result = review_pull_request(repo, "main", sources, policy)
            times.append(time.perf_counter() - t0)
        assert result is not None
        cmd = [sys.executable, "-m", "kit", "review", str(repo), "--base", "main"]
        cmd += [x for b in sources for x in ("--bundle", b)]
        t0 = time.perf_counter()
        proc = subprocess.run([*cmd, "--allowed-signers", str(allowed), "--json"],
                              capture_output=True, text=True)  # fmt: skip
        command = time.perf_counter() - t0
        print(f"bundles: {len(bundles)} x {len(tasks)} tasks; changed files: {len(result.files)}")
        print(f"verdict: {result.verdict()}")
        print(
            f"review (in-process, mteb imported): median {statistics.median(times):.2f} s "
            f"(max {max(times):.2f} s) over {args.repeats}  target < {TARGET_S:.0f} s"
        )
        print(f"import mteb: {imported:.2f} s; repro-kit review as a command: {command:.2f} s "
              f"(exit {proc.returncode})")  # fmt: skip
        missed = []
        if statistics.median(times) >= TARGET_S:
            missed.append("review time")
        if int(result.exit_code()) != 0 or proc.returncode != 0:
            missed.append(f"exit {int(result.exit_code())} (every file must be backed)")
        print(f"targets: {'missed: ' + ', '.join(missed) if missed else 'met'}")
        return 1 if missed else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
