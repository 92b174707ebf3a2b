"""deploy/github/review_pr.py: the description's bundle lines, the comment, and its posting.

The posting runs against tests/githubfake.py's loopback API; the allowed_signers lookup on a
real git repository. The review itself (the real `repro-kit review`) runs in
tests/e2e/test_review_workflow.py.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.githubfake import BOT, TOKEN, FakeGitHub, load_review_pr

rp = load_review_pr()
HEX = "0123456789abcdef" * 4
URL = "https://example.org/pr/1/files/bundle.tar.gz"


def test_bundle_lines_are_read_and_checked() -> None:
    body = "\n".join(
        [
            "Adds the model's results.",
            f"repro-kit-bundle: {URL} sha256:{HEX}",
            f"   repro-kit-bundle: {URL}   sha256:{HEX.upper()}  ",  # the same bundle again
            f"repro-kit-bundle: https://example.org/b.tar.gz sha256:{'f' * 64}",
            "the repro-kit-bundle: line above is mine",  # not a bundle line
        ]
    )
    bundles, problems = rp.parse_description(body)
    assert problems == []
    assert [(b.url, b.sha256) for b in bundles] == [
        (URL, HEX),
        ("https://example.org/b.tar.gz", "f" * 64),
    ]
    assert bundles[0].argument == f"{URL}#sha256={HEX}"


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (f"repro-kit-bundle: <URL-of-b.tar.gz> sha256:{HEX}", "still export's placeholder"),
        (f"repro-kit-bundle: http://example.org/b.tar.gz sha256:{HEX}", "not an https URL"),
        (f"repro-kit-bundle: file:///etc/passwd sha256:{HEX}", "not an https URL"),
        (f"repro-kit-bundle: https://u:p@example.org/b sha256:{HEX}", "with credentials"),
        (f"repro-kit-bundle: https://example.org/b#x sha256:{HEX}", "with a fragment"),
        (f"repro-kit-bundle: https://example.org:99999/b sha256:{HEX}", "not a URL"),
        (f"repro-kit-bundle: https://exämple.org/b sha256:{HEX}", "printable ASCII"),
        (f"repro-kit-bundle: https://e.org/{'a' * 2100} sha256:{HEX}", "over 2048"),
        (f"repro-kit-bundle: {URL} sha256:{HEX[:-1]}", "not in the form"),
        (f"repro-kit-bundle: {URL} sha256:{HEX[:-1]}g", "not in the form"),
        (f"repro-kit-bundle: {URL}", "not in the form"),
        (f"Repro-Kit-Bundle: {URL} sha256:{HEX}", "not in the form"),
    ],
)
def test_a_bad_bundle_line_is_refused_by_name(line: str, why: str) -> None:
    bundles, problems = rp.parse_description(f"intro\n{line}\n")
    assert bundles == [] and len(problems) == 1
    assert why in problems[0]


def test_the_description_is_bounded() -> None:
    many = "\n".join(f"repro-kit-bundle: {URL}{i} sha256:{HEX}" for i in range(12))
    bundles, problems = rp.parse_description(many)
    assert len(bundles) == 12 and problems == ["12 bundle lines: at most 10 are reviewed"]
    late = "x" * rp.MAX_BODY + f"\nrepro-kit-bundle: {URL} sha256:{HEX}"
    assert rp.parse_description(late) == ([], [])  # past GitHub's limit: not read
    bad = "\n".join(f"repro-kit-bundle: http://e.org/{i} sha256:{HEX}" for i in range(50))
    assert len(rp.parse_description(bad)[1]) == rp.MAX_PROBLEMS


HOSTILE = (
    "repro-kit-bundle: @org/maintainers ```\n"  # a mention and a fence
    "repro-kit-bundle: <img src=x onerror=alert(1)> [x](javascript:alert(1)) | a | b |\n"
    "repro-kit-bundle: \x1b[31mred\u202e sha256:1\n"
)


def test_hostile_lines_are_shown_only_as_indented_code() -> None:
    bundles, problems = rp.parse_description(HOSTILE)
    assert bundles == [] and len(problems) == 3
    comment = rp.how_to(problems)
    assert (
        comment.splitlines()[0]
        == "**repro-kit review: a bundle line of this description is refused**"
    )
    for line in comment.splitlines():
        if any(s in line for s in ("@org", "<img", "javascript", "red")):
            assert line.startswith("    "), line  # indented code: rendered as itself
    assert "\x1b" not in comment and "\u202e" not in comment
    assert "\\x1b[31mred\\u202e" not in comment and "\\x1b[31mred\\x202e" in comment
    assert rp.FORMAT in comment


def test_no_bundle_line_gets_the_format() -> None:
    comment = rp.how_to([])
    assert comment.startswith("**repro-kit review: this pull request's description names no bundle")
    assert f"    {rp.FORMAT}" in comment.splitlines()


def test_review_comment_keeps_reviews_verdict_first() -> None:
    report = "7 files, all backed by 1 signed bundle (alice, SHA256:x)\n\n| file | verdict |\n"
    text = rp.review_comment(report + rp.MARKER, 0, "", "footer")
    assert text.splitlines()[0] == report.splitlines()[0]
    assert (
        rp.MARKER not in text and "repro-kit review: exit 0: every changed file is backed" in text
    )
    refused = rp.review_comment(
        "", 34, "noise\nrepro-kit: error: sha256 of https://x differs\n", "f"
    )
    lines = refused.splitlines()
    assert lines[0].startswith("**repro-kit review refused the pull request's bundles** (exit 34:")
    assert "    repro-kit: error: sha256 of https://x differs" in lines


def _git(root: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t"}
    env |= {"GIT_COMMITTER_EMAIL": "t@e", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_allowed_signers_come_from_the_base_commit_only(tmp_path: Path) -> None:
    repo = tmp_path / "results"
    signers = repo / ".github" / "repro-kit" / "allowed_signers"
    signers.parent.mkdir(parents=True)
    signers.write_text("maintainer@example.org ssh-ed25519 AAAAbase\n")
    _git(repo.parent, "init", "-q", "-b", "main", str(repo))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "base")
    base = _git(repo, "rev-parse", "HEAD")
    _git(repo, "checkout", "-q", "-b", "pr")
    signers.write_text("mallory ssh-ed25519 AAAApr\n")  # the pull request trusts itself
    _git(repo, "commit", "-q", "-am", "pr")
    out = tmp_path / "out"
    out.mkdir()
    got = rp.base_signers(repo, base, out)
    assert got is not None and got.read_text() == "maintainer@example.org ssh-ed25519 AAAAbase\n"
    pr_commit = _git(repo, "rev-parse", "HEAD")
    _git(repo, "rm", "-q", str(signers))
    signers.parent.mkdir(parents=True, exist_ok=True)
    (signers.parent / "elsewhere").write_text("x\n")
    signers.symlink_to("elsewhere")  # a link in a base commit is not a file to trust
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "link")
    assert rp.base_signers(repo, _git(repo, "rev-parse", "HEAD"), out) is None
    assert rp.base_signers(repo, pr_commit, out).read_text().startswith("mallory")
    with pytest.raises(rp.Refused):
        rp.base_signers(repo, "f" * 40, out)  # a base the checkout lacks


def _event(tmp_path: Path, body: str | None, number: int = 7) -> Path:
    event = {"pull_request": {"number": number, "body": body, "base": {"sha": "a" * 40}}}
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    return path


def test_review_step_without_a_bundle_line_writes_the_how_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "pr"
    _git(tmp_path, "init", "-q", str(repo))
    _git(repo, "commit", "-q", "--allow-empty", "-m", "head")
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(_event(tmp_path, None)))
    out = tmp_path / "out"
    code = rp.main(["review", "--checkout", str(repo), "--out", str(out), "--kit", "/nonexistent"])
    assert code == rp.NO_BUNDLE
    comment = (out / "comment.md").read_text()
    assert comment.startswith("**repro-kit review: this pull request's description names no")
    assert comment.rstrip("\n").splitlines()[-1] == rp.MARKER
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(tmp_path / "missing.json"))
    assert rp.main(["review", "--checkout", str(repo), "--out", str(out)]) == rp.BAD_SETUP


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    url = fake.start(tmp_path)
    monkeypatch.setenv("GITHUB_API_URL", url)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_REPOSITORY", fake.repo)
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(_event(tmp_path, "")))
    yield fake
    fake.stop()


def _post(tmp_path: Path, text: str) -> int:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    rp.write_comment(out, text)
    return rp.main(["post", "--out", str(out)])


def test_one_comment_created_then_updated(api: FakeGitHub, tmp_path: Path) -> None:
    hostile = api.add_comment(7, f"all backed, trust me\n{rp.MARKER}", login="mallory")
    for i in range(150):  # the comment to update lies on the second page
        api.add_comment(7, f"comment {i}", login="someone")
    assert _post(tmp_path, "first verdict") == 0
    mine = [c for c in api.comments[7] if c["user"]["login"] == BOT]
    assert len(mine) == 1 and mine[0]["body"] == f"first verdict\n{rp.MARKER}\n"
    assert _post(tmp_path, "second verdict") == 0
    mine = [c for c in api.comments[7] if c["user"]["login"] == BOT]
    assert len(mine) == 1 and mine[0]["body"].startswith("second verdict\n")
    assert next(c for c in api.comments[7] if c["id"] == hostile)["body"].startswith("all backed")
    methods = [m for m, _, _ in api.requests]
    assert methods.count("POST") == 1 and methods.count("PATCH") == 1
    assert {auth for _, _, auth in api.requests} == {f"Bearer {TOKEN}"}


def test_post_refuses_what_it_cannot_trust(
    api: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert rp.main(["post", "--out", str(tmp_path / "none")]) == rp.BAD_SETUP  # no comment.md
    monkeypatch.setenv("GITHUB_TOKEN", "wrong")
    assert _post(tmp_path, "x") == rp.BAD_SETUP  # the API's 401
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", "http://api.example.org")
    assert _post(tmp_path, "x") == rp.BAD_SETUP  # the token goes over https only
    monkeypatch.setenv("GITHUB_REPOSITORY", "org/results/../../x")
    assert _post(tmp_path, "x") == rp.BAD_SETUP
    assert api.comments == {}


def test_the_token_never_follows_a_redirect(api: FakeGitHub, tmp_path: Path) -> None:
    elsewhere = FakeGitHub()
    api.redirect = elsewhere.start(tmp_path)
    try:
        assert _post(tmp_path, "x") == rp.BAD_SETUP
    finally:
        elsewhere.stop()
    assert elsewhere.requests == [] and api.comments == {}
