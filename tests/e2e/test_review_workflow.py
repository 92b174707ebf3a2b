"""The results repository's workflow (deploy/github) run step by step against a fake pull request.

A results repository with other models on its base commit and the maintainers' allowed_signers
file; a pull-request branch made by `repro-kit export` of the session's signed BIOSSES bundle
(in process, as a submitter runs it) and committed; the description holding the line that
export printed, its placeholder replaced by the bundle's URL on a loopback https server (a
throwaway certificate, trusted through SSL_CERT_FILE) that is also the fake GitHub REST API
(tests/githubfake.py). The workflow's two script steps run as the workflow runs them: `review`
(the real `repro-kit review`, no token) then `post` (the token).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from kit.cli import cli
from tests.githubfake import BOT, SCRIPT, TOKEN, FakeGitHub
from tests.support import clean_env, kit_env

KIT = Path(sys.executable).parent / "repro-kit"
OTHER = "results/other-org__other-model/" + "1" * 40
NUMBER = 12


def _git(repo: Path, *args: str) -> str:
    env = clean_env(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@e")
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}
    out = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.fixture
def server(tmp_path: Path, biosses_bundle: Path) -> Iterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub(repo="embeddings-benchmark/results")
    fake.files[biosses_bundle.name] = biosses_bundle.read_bytes()
    url = fake.start(tmp_path, tls=True)
    yield fake, url
    fake.stop()


def _pull_request(tmp_path: Path, bundle: Path, signers: Path) -> tuple[Path, str, str]:
    """(the pull request's checkout, base commit, the paste line export printed)."""
    up = tmp_path / "upstream"
    other = up / OTHER
    other.mkdir(parents=True)
    (other / "model_meta.json").write_text(json.dumps({"name": "other-org/other-model"}))
    (other / "STS12.json").write_text(json.dumps({"task_name": "STS12", "scores": {}}))
    trusted = up / ".github" / "repro-kit" / "allowed_signers"
    trusted.parent.mkdir(parents=True)
    trusted.write_bytes(signers.read_bytes())
    _git(tmp_path, "init", "-q", "-b", "main", str(up))
    _git(up, "add", "-A")
    _git(up, "commit", "-q", "-m", "base: other models")
    pr = tmp_path / "pr"
    _git(tmp_path, "clone", "-q", str(up), str(pr))
    _git(pr, "checkout", "-q", "-b", "add-minilm")
    args = ["export", str(bundle), "--results-repo", str(pr), "--allowed-signers", str(signers)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.stderr
    [line] = [ln for ln in result.stderr.splitlines() if ln.startswith("repro-kit-bundle: ")]
    _git(pr, "add", "-A")
    _git(pr, "commit", "-q", "-m", "results of all-MiniLM-L6-v2")
    return pr, _git(up, "rev-parse", "HEAD"), line


def _step(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=600
    )


def test_workflow_steps_comment_once_and_update_it(
    tmp_path: Path,
    biosses_bundle: Path,
    report_signers: tuple[Path, str],
    hf_home: Path,
    server: tuple[FakeGitHub, str],
) -> None:
    fake, url = server
    signers, fingerprint = report_signers
    pr, base, line = _pull_request(tmp_path, biosses_bundle, signers)
    bundle_url = f"{url}/files/{biosses_bundle.name}"
    pasted = line.replace(f"<URL-of-{biosses_bundle.name}>", bundle_url)
    body = f"Results of all-MiniLM-L6-v2.\n\n{pasted}\n"
    event = tmp_path / "event.json"
    out = tmp_path / "review-out"

    def run(description: str) -> tuple[int, str]:
        doc = {"pull_request": {"number": NUMBER, "body": description, "base": {"sha": base}}}
        event.write_text(json.dumps(doc))
        env = kit_env(hf_home, GITHUB_EVENT_PATH=str(event), SSL_CERT_FILE=str(fake.ca_file))
        review = _step(env, "review", "--checkout", str(pr), "--out", str(out), "--kit", str(KIT))
        env |= {"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": url, "GITHUB_REPOSITORY": fake.repo}
        post = _step(env, "post", "--out", str(out))
        assert post.returncode == 0, post.stderr
        return review.returncode, review.stdout + review.stderr

    code, log = run(body)
    assert code == 0, log
    [comment] = fake.comments[NUMBER]
    first = comment["body"].splitlines()[0]
    assert first == (out / "review.md").read_text().splitlines()[0]  # review's verdict
    assert "backed" in first and fingerprint in first, first
    assert (
        "signers checked against .github/repro-kit/allowed_signers of the base" in comment["body"]
    )
    assert comment["user"]["login"] == BOT and ("GET", f"/files/{biosses_bundle.name}") in {
        (m, p) for m, p, _ in fake.requests
    }

    wrong = body.replace(line.rsplit("sha256:", 1)[1], "0" * 64)  # an edited description
    code, log = run(wrong)
    assert code == 34, log  # review refuses the download before reading it
    [comment] = fake.comments[NUMBER]  # the same comment, updated
    first = comment["body"].splitlines()[0]
    assert first == (out / "review.md").read_text().splitlines()[0]  # review's verdict again
    digest = hashlib.sha256(biosses_bundle.read_bytes()).hexdigest()
    assert "refused (exit 34)" in first and f"sha256 is {digest}, not {'0' * 64}" in first
    assert "repro-kit review: exit 34: a bundle could not be downloaded" in comment["body"]
    assert [m for m, _, _ in fake.requests if m in ("POST", "PATCH")] == ["POST", "PATCH"]
