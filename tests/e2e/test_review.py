"""`repro-kit review` of a results pull request against the session's real signed bundle.

The results repository is a real git repository laid out as github.com/embeddings-benchmark/
results: a base commit on main holding another model's folder, and a pull-request branch made
by `repro-kit export` of the bundle and committed. Each test copies it, changes the branch as
a submitter might (a score moved by 1e-4, a task file no bundle has, a subset dropped), commits,
and runs the review in-process (click's CliRunner; mteb is imported once). Bundles are also
served by URL from a loopback HTTP server.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from kit.errors import ExitCode
from kit.publish.review.markdown import md
from tests.support import commit_all, kit_here
from tests.support import git as _git

MODEL = "sentence-transformers__all-MiniLM-L6-v2"


def _kit(*args: str | Path) -> tuple[int, str, str]:
    """The CLI in-process: (exit code, stdout, stderr); an exception but KitError is a bug."""
    proc = kit_here(list(args))
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def published(
    tmp_path_factory: pytest.TempPathFactory, biosses_bundle: Path, report_signers
) -> Path:
    """main: another model's folder; branch pr: `repro-kit export` of the bundle, committed."""
    repo = tmp_path_factory.mktemp("review") / "results"
    other = repo / "results" / "BAAI__bge-small-en-v1.5" / ("5" * 40)
    other.mkdir(parents=True)
    (other / "STS12.json").write_text(json.dumps({"task_name": "STS12", "scores": {}}))
    _git(repo.parent, "init", "-q", "-b", "main", str(repo))
    commit_all(repo, "another model")
    _git(repo, "checkout", "-q", "-b", "pr")
    args = ["--results-repo", repo, "--allowed-signers", report_signers[0]]
    code, _, err = _kit("export", biosses_bundle, *args)
    assert code == 0, err
    commit_all(repo, "results of all-MiniLM-L6-v2")
    return repo


@pytest.fixture
def repo(published: Path, tmp_path: Path) -> Path:
    """A copy of the published pull request, to change."""
    return Path(shutil.copytree(published, tmp_path / "results", symlinks=True))


def _folder(repo: Path) -> Path:
    [folder] = (repo / "results" / MODEL).iterdir()
    return folder


def _review(repo: Path, bundle: Path | str, allowed: Path, *extra: str) -> tuple[int, str, str]:
    args = [repo, "--base", "main", "--bundle", bundle, "--allowed-signers", allowed]
    return _kit("review", *args, *extra)


def _edit(path: Path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc, indent=2))


def test_every_file_backed_exits_0_with_the_verdict_first(
    repo: Path, biosses_bundle: Path, report_signers, tmp_path: Path
) -> None:
    import mteb

    allowed, fingerprint = report_signers
    page = tmp_path / "review.md"
    code, out, err = _review(repo, biosses_bundle, allowed, "--markdown", str(page))
    assert code == 0, err
    verdict = (
        f"4 files, all backed by 1 signed bundle (reviewer@example.org, {fingerprint}); "
        "the repository's rules pass"
    )
    first = page.read_text().splitlines()[0]
    assert first == md(verdict) and out.splitlines()[0] == first
    code, out, err = _review(repo, biosses_bundle, allowed, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["verdict"] == verdict and doc["counts"]["backed"] == 4
    assert {f["path"].rsplit("/", 1)[1] for f in doc["files"]} == {
        "BIOSSES.json",
        "STSBenchmark.json",
        "model_meta.json",
        "run_settings.jsonl",
    }
    assert all(r["status"] == "pass" for r in doc["rules"]) and doc["rules"]
    for task in doc["tasks"]:  # mteb's own word on each task
        meta = mteb.get_task(task["task"]).metadata
        assert (task["superseded_by"], task["is_beta"]) == (meta.superseded_by, meta.is_beta)
    scores = [
        json.loads((_folder(repo) / f"{t}.json").read_text())["scores"]["test"][0]["main_score"]
        for t in ("BIOSSES", "STSBenchmark")
    ]
    [v1] = [r for r in doc["leaderboard"] if r["benchmark"] == "MTEB(eng, v1)"]
    assert v1["tasks"] == 56 and len(v1["missing_tasks"]) == 54 and v1["mean_task"] is None
    assert v1["present_mean_task"] == pytest.approx(sum(scores) / 2)
    assert 0 <= v1["zero_shot_percent"] <= 100


def test_a_score_moved_by_1e_4_differs(repo: Path, biosses_bundle: Path, report_signers) -> None:
    path = _folder(repo) / "BIOSSES.json"
    old = json.loads(path.read_text())["scores"]["test"][0]["cosine_pearson"]
    _edit(path, lambda d: d["scores"]["test"][0].update(cosine_pearson=old + 1e-4))
    commit_all(repo, "a better score")
    code, _, err = _review(repo, biosses_bundle, report_signers[0])
    assert code == ExitCode.REVIEW_DIFFERS
    rel = path.relative_to(repo).as_posix()
    where = f"{rel} / BIOSSES / test / default / cosine_pearson"
    assert f"{where}: pull request {old + 1e-4!r}, bundle {old!r}" in err


def test_a_task_file_no_bundle_has_is_unbacked(
    repo: Path, biosses_bundle: Path, report_signers
) -> None:
    folder = _folder(repo)
    shutil.copy(folder / "BIOSSES.json", folder / "STS12.json")
    _edit(folder / "STS12.json", lambda d: d.update(task_name="STS12"))
    commit_all(repo, "a task never run")
    code, _, err = _review(repo, biosses_bundle, report_signers[0])
    assert code == ExitCode.REVIEW_UNBACKED, err
    assert "4 backed, 1 unbacked" in err and "STS12.json unbacked" in err


def test_a_removed_subset_is_named(repo: Path, biosses_bundle: Path, report_signers) -> None:
    path = _folder(repo) / "STSBenchmark.json"
    _edit(path, lambda d: d["scores"].update(test=[]))
    commit_all(repo, "drop a subset")
    code, out, _ = _review(repo, biosses_bundle, report_signers[0])
    assert code == ExitCode.REVIEW_DIFFERS
    assert "STSBenchmark.json: removed" in out and "removed: test/default" in out


def test_a_key_outside_allowed_signers_is_verifys_refusal(
    repo: Path, biosses_bundle: Path, tmp_path: Path
) -> None:
    key = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"someone@example.org {(tmp_path / 'other.pub').read_text().strip()}\n")
    code, _, err = _review(repo, biosses_bundle, allowed)
    assert code == ExitCode.KEY_NOT_ALLOWED, err
    assert "bundle 1 refused (exit 22)" in err and "4 unbacked" in err


def test_any_signer_names_the_key_untrusted(
    repo: Path, biosses_bundle: Path, report_signers
) -> None:
    args = [repo, "--base", "main", "--bundle", biosses_bundle, "--any-signer"]
    code, out, err = _kit("review", *args)
    assert code == 0, err
    assert f"all backed by 1 bundle signed by an untrusted key ({report_signers[1]} " in out
    assert "untrusted (no allowed-signers))" in out


def test_a_file_export_merged_into_is_backed_and_its_kept_scores_checked(
    biosses_bundle: Path, report_signers, tmp_path: Path
) -> None:
    """The base holds the model's STSBenchmark.json with another split (as an older mteb wrote
    it): export merges the bundle's subset into it, and the review yields the same merge."""
    allowed = report_signers[0]
    repo = tmp_path / "results"
    folder = repo / "results" / MODEL / _folder_name(biosses_bundle)
    folder.mkdir(parents=True)
    old = {"task_name": "STSBenchmark", "mteb_version": "1.12.75", "evaluation_time": 1.5}
    entry = {"main_score": 0.85, "cosine_spearman": 0.85, "hf_subset": "default"}
    old |= {"dataset_revision": _dataset_revision(biosses_bundle), "scores": {"validation": [
        entry | {"languages": ["eng-Latn"]}]}}  # fmt: skip
    (folder / "STSBenchmark.json").write_text(json.dumps(old, indent=2, sort_keys=True))
    _git(tmp_path, "init", "-q", "-b", "main", str(repo))
    commit_all(repo, "published")
    _git(repo, "checkout", "-q", "-b", "pr")
    code, out, err = _kit("export", biosses_bundle, "--results-repo", repo, "--allowed-signers",
                          allowed)  # fmt: skip
    assert code == 0 and "merged      " in out, err
    commit_all(repo, "export")
    code, out, err = _review(repo, biosses_bundle, allowed)
    assert code == 0, err
    assert "| validation | default | 0.85 | 0.85 | equal |" in out
    _edit(folder / "STSBenchmark.json", lambda d: d["scores"]["validation"][0].update(
        main_score=0.86))  # fmt: skip
    commit_all(repo, "a kept score edited")
    code, _, err = _review(repo, biosses_bundle, allowed)
    assert code == ExitCode.REVIEW_DIFFERS
    assert "STSBenchmark / validation / default / main_score: pull request 0.86, bundle 0.85" in err


def test_a_new_models_row_comes_from_its_registered_meta_and_the_registry_is_restored(
    biosses_bundle: Path,
) -> None:
    """mteb's table joins on its registry: a model mteb does not know gets a row only once its
    ModelMeta (the bundle's model_meta.json) is registered; afterwards the registry is as it was."""
    import mteb

    from kit.bundle.archive import read_bundle_archive
    from kit.publish.review.leaderboard import ModelFiles, leaderboard_rows

    name, rev = "repro-kit-test/new-model", "1" * 40
    members = read_bundle_archive(biosses_bundle)
    files, meta = {}, None
    for member, data in members.items():
        base = member.rsplit("/", 1)[-1]
        if member.startswith("results/") and base == "model_meta.json":
            meta = json.dumps(json.loads(data) | {"name": name, "revision": rev}).encode()
        elif member.startswith("results/") and base.endswith(".json"):
            files[f"results/repro-kit-test__new-model/{rev}/{base}"] = data
    assert meta is not None
    files[f"results/repro-kit-test__new-model/{rev}/model_meta.json"] = meta
    before = {m.name for m in mteb.get_model_metas()}
    assert name not in before
    model = ModelFiles(name, files, meta, ("MTEB(eng, v1)",), ("BIOSSES", "STSBenchmark"))
    [row] = leaderboard_rows([model])
    assert row.model == name and row.benchmark == "MTEB(eng, v1)" and len(row.missing) == 54
    scores = [json.loads(d)["scores"]["test"][0]["main_score"] for p, d in files.items()
              if p.endswith(("BIOSSES.json", "STSBenchmark.json"))]  # fmt: skip
    assert row.present_mean_task == pytest.approx(sum(scores) / 2)
    assert {m.name for m in mteb.get_model_metas()} == before


def _folder_name(bundle: Path) -> str:
    from kit.bundle.archive import read_bundle_archive

    return json.loads(read_bundle_archive(bundle)["manifest.json"])["model"]["revision"]


def _dataset_revision(bundle: Path) -> str:
    from kit.bundle.archive import read_bundle_archive

    members = read_bundle_archive(bundle)
    [name] = [n for n in members if n.endswith("/STSBenchmark.json")]
    return json.loads(members[name])["dataset_revision"]


class _Serve(http.server.BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        data = self.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def served(biosses_bundle: Path) -> Iterator[str]:
    """The bundle, and bytes that are not even a gzip file, on a loopback HTTP server."""
    _Serve.files = {"/biosses.tar.gz": biosses_bundle.read_bytes(), "/other.tar.gz": b"not a tar"}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Serve)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_bundle_urls_are_checked_before_they_are_read(
    repo: Path, biosses_bundle: Path, report_signers, served: str
) -> None:
    digest = hashlib.sha256(biosses_bundle.read_bytes()).hexdigest()
    code, _, err = _review(repo, f"{served}/biosses.tar.gz#sha256={digest}", report_signers[0])
    assert code == 0, err
    code, _, err = _review(repo, f"{served}/other.tar.gz#sha256={digest}", report_signers[0])
    # 34, not 10: had the archive reader seen these bytes, it would have refused a non-gzip file
    assert code == ExitCode.BUNDLE_DOWNLOAD, err
    other = hashlib.sha256(b"not a tar").hexdigest()
    assert f"the download's sha256 is {other}, not {digest}" in err
    assert "gzip" not in err and "archive" not in err
