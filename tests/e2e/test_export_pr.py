"""`repro-kit export` into a results repository laid out as github.com/embeddings-benchmark/results,
a pull request as a branch of a clone: files of an older mteb are left alone byte for byte, only
the subsets the repository lacks are added, drift is measured against the pull request's base,
and `--check` shows every rule's verdict.

The published files are built in the shape mteb 1.12 wrote them (the results repository's
STSBenchmark.json of all-MiniLM-L6-v2: keys sorted, full-precision metrics, `pearson` and
`spearman` with their p-values, `kg_co2_emissions`, `evaluation_time`, no `date`), with the
published main score (../shared/reference), and mteb 1.x's one-line model_meta.json. The
exports run the real CLI in-process (mteb is imported once), on the session's real bundles.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from kit.bundle.archive import read_bundle_archive
from kit.errors import ExitCode
from kit.publish.repomerge import DRIFT_LIMIT
from tests.support import commit_all, kit_here, reference_score, run_kit
from tests.support import git as _git

METRICS = (
    "cosine_pearson",
    "cosine_spearman",
    "euclidean_pearson",
    "euclidean_spearman",
    "manhattan_pearson",
    "manhattan_spearman",
)
META_1X = (
    "name",
    "revision",
    "release_date",
    "languages",
    "n_parameters",
    "max_tokens",
    "embed_dim",
    "license",
    "open_weights",
    "public_training_code",
    "framework",
    "reference",
    "similarity_fn_name",
    "use_instructions",
    "training_datasets",
    "adapted_from",
    "superseded_by",
)


def _export(bundle: Path, repo: Path, *extra: str) -> tuple[int, str, str]:
    """``repro-kit export`` in-process: (exit code, stdout, stderr); an exception is a bug (1)."""
    proc = kit_here(["export", bundle, "--results-repo", repo, "--allow-unsigned", *extra])
    return proc.returncode, proc.stdout, proc.stderr


def _files(bundle: Path) -> tuple[str, dict[str, bytes]]:
    """The bundle's results folder and its files by name."""
    members = read_bundle_archive(bundle)
    model = json.loads(members["manifest.json"])["model"]
    folder = f"results/{model['name'].replace('/', '__')}/{model['revision']}"
    return folder, {n.rsplit("/", 1)[1]: d for n, d in members.items() if n.startswith(folder)}


def _entry(bundle_file: bytes) -> dict:
    return json.loads(bundle_file)["scores"]["test"][0]


def _old_file(bundle_file: bytes, task: str, scores: dict[tuple[str, str], float]) -> bytes:
    """A result file as mteb 1.12 wrote it, one entry per (split, subset) with its main score."""
    new = json.loads(bundle_file)
    entry = _entry(bundle_file)
    out: dict[str, list] = {}
    for (split, subset), main in scores.items():
        old = {k: entry[k] + 3e-8 for k in METRICS}  # full precision, as 1.x wrote them
        old |= {"hf_subset": subset, "languages": entry["languages"], "main_score": main}
        old |= {"pearson": [old["cosine_pearson"], 0.0], "spearman": [main, 1.4e-300]}
        out.setdefault(split, []).append(old)
    doc = {
        "dataset_revision": new["dataset_revision"],
        "evaluation_time": 1.2171757221221924,
        "kg_co2_emissions": 0.00018667650466967732,
        "mteb_version": "1.12.75",
        "scores": out,
        "task_name": task,
    }
    return json.dumps(doc, indent=2, sort_keys=True).encode()


def _published(tmp_path: Path, bundle: Path, sts12: dict[tuple[str, str], float]) -> Path:
    """An upstream holding the model's published folder on main, cloned, on a PR branch."""
    folder, files = _files(bundle)
    up = tmp_path / "upstream"
    where = up / folder
    where.mkdir(parents=True)
    sts = reference_score("STSBenchmark")
    (where / "STSBenchmark.json").write_bytes(
        _old_file(files["STSBenchmark.json"], "STSBenchmark", {("test", "default"): sts})
    )
    (where / "STS12.json").write_bytes(_old_file(files["STS12.json"], "STS12", sts12))
    for other in ("STS13", "STS14"):  # the folder's other tasks: never listed, never touched
        score = {("test", "default"): 0.8}
        (where / f"{other}.json").write_bytes(_old_file(files["STS12.json"], other, score))
    meta = json.loads(files["model_meta.json"])
    (where / "model_meta.json").write_text(json.dumps({k: meta.get(k) for k in META_1X}))
    _git(up, "init", "-q", "-b", "main")
    commit_all(up, "published results")
    clone = tmp_path / "results"
    _git(tmp_path, "clone", "-q", str(up), str(clone))
    _git(clone, "checkout", "-q", "-b", "pr")
    return clone


def _rows(out: str, rule: str) -> list[str]:
    return [ln for ln in out.splitlines() if f"│ {rule} " in ln]


def _subsets(data: bytes) -> dict[tuple[str, str], dict]:
    doc = json.loads(data)
    return {(s, e["hf_subset"]): e for s, es in doc["scores"].items() for e in es}


RULES = (
    "naming",
    "revision",
    "organisation",
    "task name",
    "one revision",
    "size",
    "model in mteb",
    "nothing removed",
    "drift",
)


def test_older_files_left_alone_and_only_a_new_subset_added(
    sts_bundle: Path, tmp_path: Path
) -> None:
    # STSBenchmark: published score, equal to the run's within 1e-6; STS12: another split only
    repo = _published(tmp_path, sts_bundle, {("validation", "default"): 0.7})
    folder, files = _files(sts_bundle)
    base = {p.name: p.read_bytes() for p in (repo / folder).iterdir()}

    code, out, err = _export(sts_bundle, repo, "--check")  # model_meta.json differs: 7
    assert code == ExitCode.OUTPUT, err
    [meta_row] = _rows(out, "model meta")
    assert "FAIL" in meta_row and "exists with other content" in meta_row
    for rule in RULES:  # every verdict, although the real run would stop at model_meta.json
        assert _rows(out, rule) and all(" pass " in r for r in _rows(out, rule)), rule
    assert "STS13.json" not in out and "2 other files of the folder left alone" in out
    assert "--overwrite" in err.strip().splitlines()[-1]
    code, everything, _ = _export(sts_bundle, repo, "--check", "--all")
    assert code == ExitCode.OUTPUT and "STS13.json" in everything and "STS14.json" in everything
    assert _git(repo, "status", "--porcelain") == ""

    code, out, err = _export(sts_bundle, repo, "--overwrite")
    assert code == 0, err
    assert "merge-base of origin/main and HEAD" in err
    changed = _git(repo, "status", "--porcelain", "--untracked-files=all").splitlines()
    assert sorted(ln[3:].rsplit("/", 1)[1] for ln in changed) == [
        "STS12.json",
        "model_meta.json",
        "run_settings.jsonl",
    ]
    now = repo / folder
    assert (now / "STSBenchmark.json").read_bytes() == base["STSBenchmark.json"]  # byte for byte
    assert f"unchanged   {now / 'STSBenchmark.json'}" in out
    assert f"merged      {now / 'STS12.json'}" in out
    digest = hashlib.sha256(sts_bundle.read_bytes()).hexdigest()
    url = f"<URL-of-{sts_bundle.name}>"
    assert err.splitlines()[-5:] == [  # export ends with the pull request's line and its review
        f"paste into the pull request's description ({url}: the bundle's https URL once it is "
        "attached to the pull request or a release):",
        f"repro-kit-bundle: {url} sha256:{digest}",
        "a maintainer reviews the pull request in a checkout of it with:",
        f"repro-kit review . --base main --bundle '{url}#sha256={digest}' --allow-unsigned",
        "  the bundle is unsigned: review accepts it only with --allow-unsigned",
    ]
    merged = json.loads((now / "STS12.json").read_bytes())
    got = _subsets((now / "STS12.json").read_bytes())
    assert set(got) == {("validation", "default"), ("test", "default")}
    assert got[("validation", "default")] == _subsets(base["STS12.json"])[("validation", "default")]
    assert got[("test", "default")] == _entry(files["STS12.json"])  # the bundle's, as mteb wrote
    old, ours = json.loads(base["STS12.json"]), json.loads(files["STS12.json"])
    assert merged["evaluation_time"] == pytest.approx(
        old["evaluation_time"] + ours["evaluation_time"]  # mteb's merge: both runs' scores stay
    )
    assert merged["kg_co2_emissions"] == old["kg_co2_emissions"]
    assert merged["mteb_version"] == f"1.12.75-{ours['mteb_version']}"
    settings = [json.loads(ln) for ln in (now / "run_settings.jsonl").read_text().splitlines()]
    assert [(s["task"], s["splits"], s["subsets"]) for s in settings] == [
        ("STS12", ["test"], ["default"])  # STSBenchmark's file was left alone: no line
    ]

    commit_all(repo, "export")
    code, out, err = _export(sts_bundle, repo)
    assert code == 0, err
    assert all(ln.startswith("unchanged ") for ln in out.splitlines()), out
    assert _git(repo, "status", "--porcelain") == ""


def test_drift_committed_on_the_pr_branch_is_measured_against_the_base(
    sts_bundle: Path, tmp_path: Path
) -> None:
    _, files = _files(sts_bundle)
    claimed = _entry(files["STS12.json"])["main_score"]
    published = claimed + 2 * DRIFT_LIMIT
    repo = _published(tmp_path, sts_bundle, {("test", "default"): published})
    code, out, err = _export(sts_bundle, repo, "--overwrite", "--allow-drift")
    assert code == 0, err
    accepted = f"accepted drift: STS12 test/default {published:.6f} -> {claimed:.6f} (-0.002000"
    assert accepted in err
    assert "(test_results_diff) refuses a main score moved by more than 0.001" in err
    [pr_line] = [ln for ln in err.splitlines() if "description: STS12 test/default" in ln]
    assert "accepted with --allow-drift" in pr_line and "test_results_diff fails" in pr_line
    commit_all(repo, "export with --allow-drift")

    code, out, err = _export(sts_bundle, repo, "--check")  # the file now holds the bundle's
    assert code == ExitCode.DRIFT, err
    head = _git(repo, "merge-base", "origin/main", "HEAD").strip()
    [row] = [r for r in _rows(out, "drift") if "STS12" in r]
    assert "FAIL" in row and f"against base {head[:12]}" in row and "over 0.001" in row
    assert _export(sts_bundle, repo)[0] == ExitCode.DRIFT  # the real run refuses it too
    code, out, err = _export(sts_bundle, repo, "--check", "--allow-drift")
    assert code == 0 and " allowed " in next(r for r in _rows(out, "drift") if "STS12" in r)
    code, out, err = _export(sts_bundle, repo, "--check", "--base", "HEAD")
    assert code == 0, err  # measured against the branch itself, nothing moved


@pytest.fixture(scope="module")
def batch7_bundle(hf_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second real run of STSBenchmark at batch size 7, and the unsigned bundle evaluate made."""
    run = tmp_path_factory.mktemp("batch7") / "run"
    args = ["evaluate", "--tasks", "STSBenchmark", "-o", str(run), "--offline", "-q"]
    proc = run_kit([*args, "--batch-size", "7"], hf_home)
    assert proc.returncode == 0, proc.stderr
    bundle = run.with_name("run.tar.gz")
    assert f"bundle: {bundle} (UNSIGNED; verified)" in proc.stdout + proc.stderr
    return bundle


def test_a_second_run_at_another_batch_size_changes_no_byte(
    sts_bundle: Path, batch7_bundle: Path, tmp_path: Path
) -> None:
    _, first = _files(sts_bundle)
    _, second = _files(batch7_bundle)
    a, b = _entry(first["STSBenchmark.json"]), _entry(second["STSBenchmark.json"])
    assert abs(a["main_score"] - b["main_score"]) <= DRIFT_LIMIT / 100  # equal scores
    assert b'"batch_size": 7' in second["run_settings.jsonl"]
    assert b'"batch_size": 7' not in first["run_settings.jsonl"]
    repo = tmp_path / "results"
    (repo / "results").mkdir(parents=True)  # a results checkout: a work tree holding results/
    _git(repo, "init", "-q", "-b", "main")
    assert _export(sts_bundle, repo)[0] == 0
    commit_all(repo, "first run")
    code, out, err = _export(batch7_bundle, repo)
    assert code == 0, err
    assert all(ln.startswith("unchanged ") for ln in out.splitlines()), out
    assert _git(repo, "status", "--porcelain", "--untracked-files=all") == ""
