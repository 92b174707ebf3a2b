"""The command a user runs after a bundle is written: the export, runnable as printed.

``export_step`` gives ``repro-kit export`` for a bundle: into a results checkout (``results``
here, or the ``results`` folder beside repro-kit's own checkout when run inside it), with
``--init`` (a missing checkout is made, an existing one left as it is), and the trust anchor
the bundle needs. For a signed bundle that is the signer's ``.pub`` (the one given to sign
through ssh-agent, or the one beside a private key file) when it holds the signing key and
the user can see it; otherwise an ``allowed_signers`` line for the key, written beside the
bundle. An unsigned bundle gets ``--allow-unsigned`` and how to sign it first. In a container
every path is the host's (``kit.runfolder.host_paths``).

``review_paste`` gives what ``export`` ends with: the line to paste into the pull request's
description (``repro-kit-bundle: URL sha256:HEX``, the URL a placeholder until the bundle is
attached; the results repository's workflow, deploy/github, reads these lines) and the
``repro-kit review`` a maintainer runs on the pull request.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kit.fsio import atomic_write_bytes
from kit.publish.resultsrepo import RESULTS, UPSTREAM, suggested_checkout
from kit.runfolder import (
    CONTAINER_OUTPUT,
    HOST_RESULTS_ENV,
    host_paths,
    on_host,
    shown_path,
)
from kit.signing.wire import NAMESPACE

_PRINCIPAL = re.compile(r'^[^\s,"*?!]+$')


@dataclass(frozen=True)
class NextStep:
    """A command to print (``line``, runnable as it is) and notes about it."""

    argv: tuple[str, ...]
    notes: tuple[str, ...]

    @property
    def line(self) -> str:
        """The command as one shell line (quoted where needed)."""
        return shlex.join(self.argv)


def allowed_signers_beside(bundle: Path) -> Path:
    """``NAME.allowed_signers`` beside ``NAME.tar.gz``."""
    bundle = Path(bundle)
    stem = bundle.name.removesuffix(".gz").removesuffix(".tar")
    return bundle.with_name(stem + ".allowed_signers")


def export_step(
    bundle: Path,
    *,
    public_key: str | None,
    key: Path | None,
    environ: Mapping[str, str],
    cwd: Path,
) -> NextStep:
    """The export of ``bundle``, signed by ``public_key`` ("TYPE BASE64"; None: unsigned)
    with ``key`` (the --sign file, None if unknown). May write an allowed_signers file beside
    the bundle (see the module's docstring)."""
    host = host_paths(environ)
    shown = shown_path(bundle, host)
    repo = _results_repo(environ, cwd, host)
    argv = ["repro-kit", "export", shown, "--results-repo", repo, "--init"]
    notes = [f"{repo}: your clone of {UPSTREAM} (--init makes an empty one if there is none)"]
    if public_key is None:
        argv.append("--allow-unsigned")
        notes.append(
            f"unsigned: to sign it first, repro-kit sign {shlex.quote(shown)} --sign KEY, "
            "then export with --public-key KEY.pub instead of --allow-unsigned"
        )
    else:
        argv += _anchor(Path(bundle), public_key, key, host)
    return NextStep(tuple(argv), tuple(notes))


def _results_repo(environ: Mapping[str, str], cwd: Path, host: Mapping[str, str]) -> str:
    """The results checkout to name: the launcher's, beside the folder a plain ``docker run``
    was started from (it mounts ``$PWD/runs`` at /out), or as seen from ``cwd``."""
    given = environ.get(HOST_RESULTS_ENV, "").strip()
    if given:
        return given
    if CONTAINER_OUTPUT in host:
        return os.path.normpath(os.path.join(host[CONTAINER_OUTPUT], "..", "..", RESULTS))
    if host:
        return RESULTS
    return suggested_checkout(cwd)


def _pub_line(path: Path) -> tuple[str, str] | None:
    """("TYPE BASE64", comment) of the OpenSSH public key line in ``path``; None if none."""
    try:
        lines = [ln.split() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError):
        return None
    if len(lines) != 1 or len(lines[0]) < 2:
        return None
    return " ".join(lines[0][:2]), " ".join(lines[0][2:])


def _anchor(bundle: Path, public_key: str, key: Path | None, host: Mapping[str, str]) -> list[str]:
    """--public-key with the signer's .pub, or --allowed-signers with a file written here."""
    pub = None
    if key is not None:
        pub = key if key.name.endswith(".pub") else key.with_name(key.name + ".pub")
    found = _pub_line(pub) if pub is not None else None
    if pub is not None and found is not None and found[0] == public_key:
        seen = on_host(pub, host) if host else str(pub)
        if seen is not None:
            return ["--public-key", seen]
    comment = found[1] if found is not None and found[0] == public_key else ""
    principal = comment if _PRINCIPAL.match(comment) else "signer"
    dest = allowed_signers_beside(bundle)
    line = f'{principal} namespaces="{NAMESPACE}" {public_key}\n'
    atomic_write_bytes(dest, line.encode("utf-8"))
    return ["--allowed-signers", shown_path(dest, host)]


BUNDLE_LINE = "repro-kit-bundle:"  # deploy/github/review_pr.py reads this prefix
MAINTAINERS_SIGNERS = ".github/repro-kit/allowed_signers"  # in the results repository


@dataclass(frozen=True)
class ReviewPaste:
    """The pull request's bundle line (pasted as it is but for the URL placeholder) and the
    review a maintainer runs (``review.line``)."""

    line: str
    placeholder: str
    review: NextStep


def review_paste(bundle_name: str, sha256: str, *, signed: bool) -> ReviewPaste:
    """The bundle line of a bundle called ``bundle_name`` with this sha256, and its review."""
    url = f"<URL-of-{bundle_name}>"
    argv = ["repro-kit", "review", ".", "--base", "main", "--bundle", f"{url}#sha256={sha256}"]
    if signed:
        argv += ["--allowed-signers", "ALLOWED_SIGNERS"]
        notes = (
            f"ALLOWED_SIGNERS: the maintainers' file ({MAINTAINERS_SIGNERS} as on main, never "
            "the pull request's); --any-signer instead names the signer's key as untrusted",
        )
    else:
        argv.append("--allow-unsigned")
        notes = ("the bundle is unsigned: review accepts it only with --allow-unsigned",)
    line = f"{BUNDLE_LINE} {url} sha256:{sha256}"
    return ReviewPaste(line, url, NextStep(tuple(argv), notes))
