"""The script steps of the results repository's workflow (repro-kit-review.yml beside it).

    review_pr.py review --checkout DIR --out DIR [--kit PATH]    (no token: never given one)
    review_pr.py post --out DIR                                  (GITHUB_TOKEN: comments only)

``review`` reads the pull request from the event payload (``$GITHUB_EVENT_PATH``): the lines
``repro-kit-bundle: URL sha256:HEX`` of its description, its base commit. It runs ``repro-kit
review`` on the checkout of the pull request's head (data only: nothing of it runs) against
that base, with the allowed_signers file of the BASE commit (``SIGNERS``, read from git, never
from the pull request's files) or, where the base has none, ``--any-signer``. It writes the
comment to ``OUT/comment.md`` and exits with review's code; 2 when the description gives no
usable bundle line (the comment says how to add one), 3 when the event or checkout is not a
pull request's. ``post`` posts that comment, or updates the one it posted before (found by
``MARKER`` and its author), through the REST API at ``$GITHUB_API_URL``; 3 when that fails.

The description is hostile: it is read up to GitHub's own limit, at most ``MAX_BUNDLES`` lines
are taken, each URL must be https, at most ``MAX_URL`` characters of printable ASCII without
credentials, each hash 64 hex digits; anything of it shown in the comment is in a code block.
Standard library only: this file runs before and beside the kit, from the kit's pinned checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PREFIX = "repro-kit-bundle:"
MARKER = "<!-- repro-kit-review -->"
SIGNERS = ".github/repro-kit/allowed_signers"
BOT = "github-actions[bot]"  # the author of the comments GITHUB_TOKEN posts
MAX_BODY = 65536  # characters of a description GitHub keeps
MAX_EVENT = 8 << 20  # bytes of the event payload
MAX_BUNDLES = 10
MAX_URL = 2048
MAX_SHOWN = 200  # characters of one hostile string shown in the comment
MAX_PROBLEMS = 10
MAX_SIGNERS = 1 << 20  # bytes of the base's allowed_signers
MAX_COMMENT = 60000  # characters (GitHub refuses a comment over 65536)
MAX_PAGES = 50  # of 100 comments each
REVIEW_TIMEOUT = 1500  # seconds
NO_BUNDLE, BAD_SETUP = 2, 3

_LINE = re.compile(r"repro-kit-bundle:[ \t]+(\S+)[ \t]+sha256:([0-9A-Fa-f]{64})")
_SHA1 = re.compile(r"[0-9a-f]{40}")
_REPO = re.compile(r"[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}")
FORMAT = f"{PREFIX} https://HOST/PATH/BUNDLE.tar.gz sha256:<64 hex digits of the file>"
MEANING = {
    0: "every changed file is backed",
    32: "a file differs from what its bundle yields, or something was removed",
    33: "a changed file is backed by no bundle",
    34: "a bundle could not be downloaded, is too large, or its sha256 differs",
    35: "a results-repository rule fails",
    36: "a main score drifts by more than 0.001",
}


class Refused(Exception):
    """The event, checkout or environment is not what the workflow gives (exit 3)."""


@dataclass(frozen=True)
class Bundle:
    url: str
    sha256: str

    @property
    def argument(self) -> str:
        """review's ``--bundle`` value."""
        return f"{self.url}#sha256={self.sha256}"


def parse_description(body: str) -> tuple[list[Bundle], list[str]]:
    """The bundle lines of a pull request's description and the refusals of bad ones."""
    bundles: list[Bundle] = []
    problems: list[str] = []
    for raw in body[:MAX_BODY].splitlines():
        line = raw.strip()
        if not line.lower().startswith(PREFIX):
            continue
        match = _LINE.fullmatch(line)
        why = "not in the form" if match is None else url_problem(match.group(1))
        if match is not None and why is None:
            found = Bundle(match.group(1), match.group(2).lower())
            if found not in bundles:
                bundles.append(found)
        elif len(problems) < MAX_PROBLEMS:
            problems.append(f"{why}: {shown(line)}")
    if len(bundles) > MAX_BUNDLES:
        problems.append(f"{len(bundles)} bundle lines: at most {MAX_BUNDLES} are reviewed")
    return bundles, problems


def url_problem(url: str) -> str | None:
    """Why a bundle URL is refused, or None."""
    if url.startswith("<"):
        return "the URL is still export's placeholder"
    if len(url) > MAX_URL:
        return f"a URL over {MAX_URL} characters"
    if not url.isascii() or not url.isprintable():
        return "a URL of other than printable ASCII"
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        return "not a URL"
    if parts.scheme != "https" or not parts.hostname:
        return "not an https URL"
    if "@" in parts.netloc:
        return "a URL with credentials"
    if parts.fragment or "#" in url:
        return "a URL with a fragment"
    return None


def shown(text: str) -> str:
    """Hostile text on one line, cut, control characters escaped (for a code block)."""
    cut = text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "..."
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in cut)


def code_block(lines: list[str]) -> str:
    """Lines shown as themselves: indented code, which no line can close or escape."""
    return "\n".join("    " + shown(line) for line in lines)


# ------------------------------------------------------------------------------ review


def read_event() -> dict[str, Any]:
    """The pull request of ``$GITHUB_EVENT_PATH``."""
    path = os.environ.get("GITHUB_EVENT_PATH", "")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_EVENT + 1)
        event = json.loads(data) if len(data) <= MAX_EVENT else None
    except (OSError, ValueError) as e:
        raise Refused(f"cannot read the event payload {path!r}: {e}") from None
    pr = event.get("pull_request") if isinstance(event, dict) else None
    if not isinstance(pr, dict):
        raise Refused("the event is not a pull request's")
    number, base = pr.get("number"), (pr.get("base") or {}).get("sha")
    if type(number) is not int or number < 1:
        raise Refused("the event has no pull request number")
    if not isinstance(base, str) or not _SHA1.fullmatch(base):
        raise Refused("the event has no base commit")
    body = pr.get("body")
    return {"number": number, "base": base, "body": body if isinstance(body, str) else ""}


def git(checkout: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """git in the pull request's checkout (read only)."""
    return subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, timeout=60)


def base_signers(checkout: Path, base: str, out: Path) -> Path | None:
    """The base commit's allowed_signers written to ``out`` (a plain file only), or None."""
    listed = git(checkout, "ls-tree", "-l", base, "--", SIGNERS)
    if listed.returncode != 0:
        raise Refused(f"the checkout lacks the base commit {base}")
    fields = listed.stdout.decode("utf-8", "replace").split()
    if not fields or fields[0] not in ("100644", "100755") or int(fields[3]) > MAX_SIGNERS:
        return None
    blob = git(checkout, "cat-file", "blob", fields[2])
    if blob.returncode != 0:
        raise Refused(f"cannot read {SIGNERS} of {base}")
    dest = out / "allowed_signers"
    dest.write_bytes(blob.stdout)
    return dest


def run_review(args: argparse.Namespace) -> int:
    """The ``review`` step: write the comment, return the job's exit code."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    checkout = Path(args.checkout)
    pr = read_event()
    head = git(checkout, "rev-parse", "--verify", "HEAD^{commit}")
    if head.returncode != 0:
        raise Refused(f"{checkout} is not a checkout of the pull request")
    head_sha = head.stdout.decode().strip()
    bundles, problems = parse_description(pr["body"])
    if problems or not bundles:
        write_comment(out, how_to(problems))
        return NO_BUNDLE
    signers = base_signers(checkout, pr["base"], out)
    trust = ["--allowed-signers", str(signers)] if signers else ["--any-signer"]
    markdown = out / "review.md"
    markdown.unlink(missing_ok=True)
    argv = [args.kit, "review", str(checkout), "--base", pr["base"]]
    for b in bundles:
        argv += ["--bundle", b.argument]
    env = {k: v for k, v in os.environ.items() if "TOKEN" not in k and not k.startswith("ACTIONS_")}
    try:
        proc = subprocess.run(
            [*argv, *trust, "--markdown", str(markdown)],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=REVIEW_TIMEOUT,
            env=env,
        )
        code, stderr = proc.returncode, proc.stderr
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr)
    except subprocess.TimeoutExpired:
        code, stderr = 124, f"repro-kit review ran past {REVIEW_TIMEOUT} s"
    report = markdown.read_text("utf-8", "replace") if markdown.is_file() else ""
    footer = f"repro-kit review of {head_sha[:12]} against the base {pr['base'][:12]}; " + (
        f"signers checked against {SIGNERS} of the base"
        if signers
        else f"any signer accepted and named (the base has no {SIGNERS})"
    )
    write_comment(out, review_comment(report, code, stderr, footer))
    return code


def how_to(problems: list[str]) -> str:
    """The comment for a description without a usable bundle line."""
    head = (
        "**repro-kit review: a bundle line of this description is refused**"
        if problems
        else "**repro-kit review: this pull request's description names no bundle**"
    )
    parts = [head, ""]
    if problems:
        parts += [code_block(problems), ""]
    parts += [
        "Add one line per bundle to the description, as `repro-kit export` prints it at its "
        "end (the URL of the bundle file attached to this pull request or to a release, "
        "https only; the sha256 of the file):",
        "",
        code_block([FORMAT]),
        "",
        "Editing the description runs the review again.",
    ]
    return "\n".join(parts)


def review_comment(report: str, code: int, stderr: str, footer: str) -> str:
    """Review's Markdown (its first line the verdict), or its refusal, and the footer."""
    errors = [ln for ln in stderr.splitlines() if ln.startswith("repro-kit: error:")][-3:]
    meaning = MEANING.get(code, "the bundle failed verification" if 10 <= code <= 27 else "")
    status = f"exit {code}" + (f": {meaning}" if meaning else "")
    if report.strip():
        body = report.replace(MARKER, "").strip()
        if len(body) > MAX_COMMENT:
            body = body[:MAX_COMMENT] + "\n\n(cut here: the whole review is in the job's log)"
        parts = [body, "", f"repro-kit review: {status}"]
    else:
        parts = [f"**repro-kit review refused the pull request's bundles** ({status})"]
        parts += ["", code_block(errors or stderr.strip().splitlines()[-3:] or ["(no message)"])]
    return "\n".join([*parts, "", "---", f"<sub>{footer}</sub>"])


def write_comment(out: Path, text: str) -> None:
    """``OUT/comment.md``, the marker last (the first line is the verdict)."""
    (out / "comment.md").write_text(f"{text}\n{MARKER}\n", encoding="utf-8")
    print(text)


# ------------------------------------------------------------------------------ post


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """The token goes to the API's host only: a redirect is an error."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def,unused-ignore]
        raise urllib.error.HTTPError(req.full_url, code, f"redirect to {newurl}", headers, fp)


def api_base() -> str:
    """``$GITHUB_API_URL``: https, or http on the loopback (a test's fake API)."""
    url = os.environ.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
    parts = urllib.parse.urlsplit(url)
    local = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and local):
        raise Refused(f"GITHUB_API_URL {url!r} is not https")
    return url


def call(method: str, url: str, token: str, payload: Any = None) -> Any:
    """One REST call; its JSON answer."""
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Accept", "application/vnd.github+json")
    req.add_header("X-GitHub-Api-Version", "2022-11-28")
    req.add_header("User-Agent", "repro-kit-review")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(req, timeout=30) as resp:
            return json.loads(resp.read(MAX_EVENT) or b"null")
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise Refused(f"{method} {url}: {e}") from None


def own_comment(api: str, repo: str, number: int, token: str) -> int | None:
    """The id of the comment this workflow posted before (marker and author), or None."""
    for page in range(1, MAX_PAGES + 1):
        url = f"{api}/repos/{repo}/issues/{number}/comments?per_page=100&page={page}"
        comments = call("GET", url, token)
        if not isinstance(comments, list):
            raise Refused(f"GET {url}: not a list of comments")
        for c in comments:
            user = c.get("user") or {}
            if MARKER in str(c.get("body") or "") and user.get("login") == bot_login():
                return int(c["id"])
        if len(comments) < 100:
            return None
    return None


def bot_login() -> str:
    """Whose comment is updated: the token's bot (REPRO_KIT_REVIEW_BOT names another)."""
    return os.environ.get("REPRO_KIT_REVIEW_BOT", BOT)


def run_post(args: argparse.Namespace) -> int:
    """The ``post`` step: create the comment, or update the one posted before."""
    token = os.environ.get("GITHUB_TOKEN", "")
    repo = os.environ.get("GITHUB_REPOSITORY", "")
    if not token or not _REPO.fullmatch(repo):
        raise Refused("GITHUB_TOKEN and GITHUB_REPOSITORY (owner/name) are needed")
    comment = Path(args.out) / "comment.md"
    if not comment.is_file():
        raise Refused(f"{comment} was not written: the review step failed (see its log)")
    body = comment.read_text(encoding="utf-8")
    api, number = api_base(), read_event()["number"]
    found = own_comment(api, repo, number, token)
    if found is None:
        call("POST", f"{api}/repos/{repo}/issues/{number}/comments", token, {"body": body})
        print(f"posted the review comment on #{number}")
    else:
        call("PATCH", f"{api}/repos/{repo}/issues/comments/{found}", token, {"body": body})
        print(f"updated the review comment {found} on #{number}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    steps = parser.add_subparsers(dest="step", required=True)
    review = steps.add_parser("review", help="run repro-kit review, write OUT/comment.md")
    review.add_argument("--checkout", required=True, help="the pull request's head (data)")
    review.add_argument("--out", required=True, help="folder for comment.md")
    review.add_argument("--kit", default="repro-kit", help="the repro-kit command (pinned)")
    post = steps.add_parser("post", help="post or update the comment of OUT/comment.md")
    post.add_argument("--out", required=True, help="the review step's folder")
    args = parser.parse_args(argv)
    try:
        return run_review(args) if args.step == "review" else run_post(args)
    except Refused as e:
        print(f"review_pr: error: {e}", file=sys.stderr)
        return BAD_SETUP


if __name__ == "__main__":
    sys.exit(main())
