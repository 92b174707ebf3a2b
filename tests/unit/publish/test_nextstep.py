"""The printed export: the trust anchor a bundle needs, host paths for a container run."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from kit.publish.nextstep import allowed_signers_beside, export_step
from kit.signing.allowed_signers import load_allowed_signers


def _pub_line() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate().public_key()
    fmt = serialization.PublicFormat.OpenSSH
    return key.public_bytes(serialization.Encoding.OpenSSH, fmt).decode()


KEY, OTHER = _pub_line(), _pub_line()


def _argv(step) -> list[str]:
    return shlex.split(step.line)


def test_unsigned_gets_allow_unsigned_and_how_to_sign(tmp_path: Path) -> None:
    bundle = tmp_path / "runs" / "m.tar.gz"
    step = export_step(bundle, public_key=None, key=None, environ={}, cwd=tmp_path)
    assert _argv(step) == ["repro-kit", "export", str(bundle), "--results-repo", "results",
                           "--init", "--allow-unsigned"]  # fmt: skip
    assert any("repro-kit sign" in n for n in step.notes)


def test_private_key_file_uses_the_pub_beside_it(tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    key.write_text("PRIVATE")
    (tmp_path / "id_ed25519.pub").write_text(f"{KEY} alice@example.org\n")
    step = export_step(tmp_path / "b.tar.gz", public_key=KEY, key=key, environ={}, cwd=tmp_path)
    assert _argv(step)[-2:] == ["--public-key", str(tmp_path / "id_ed25519.pub")]
    assert not allowed_signers_beside(tmp_path / "b.tar.gz").exists()


def test_a_pub_of_another_key_gives_an_allowed_signers_file(tmp_path: Path) -> None:
    pub = tmp_path / "id.pub"
    pub.write_text(f"{OTHER} bob\n")
    bundle = tmp_path / "b.tar.gz"
    step = export_step(bundle, public_key=KEY, key=pub, environ={}, cwd=tmp_path)
    written = tmp_path / "b.allowed_signers"
    assert _argv(step)[-2:] == ["--allowed-signers", str(written)]
    [entry] = load_allowed_signers(written)
    assert entry.principals == ("signer",) and entry.allows_namespace("repro-kit")


def test_plain_docker_run_prints_host_paths(tmp_path: Path) -> None:
    """-v $PWD/runs:/out -e REPRO_KIT_HOST_OUTPUT=$PWD/runs; the .pub is mounted elsewhere."""
    inside = tmp_path / "out"  # stands for /out
    pub = tmp_path / "signing.pub"
    pub.write_text(f"{KEY} alice@example.org\n")
    env = {"REPRO_KIT_HOST_PATHS": json.dumps({str(inside): "/home/me/kit/runs"})}
    inside.mkdir()
    step = export_step(
        inside / "minilm.tar.gz", public_key=KEY, key=pub, environ=env, cwd=Path("/")
    )
    argv = _argv(step)
    assert argv[2] == "/home/me/kit/runs/minilm.tar.gz"
    assert argv[-2:] == ["--allowed-signers", "/home/me/kit/runs/minilm.allowed_signers"]
    assert argv[argv.index("--results-repo") + 1] == "results"
    [entry] = load_allowed_signers(inside / "minilm.allowed_signers")
    assert entry.principals == ("alice@example.org",)


def test_host_output_names_the_results_beside_the_folder_docker_ran_in(tmp_path: Path) -> None:
    env = {"REPRO_KIT_HOST_OUTPUT": "/home/me/kit/runs"}
    step = export_step(Path("/out/m.tar.gz"), public_key=None, key=None, environ=env, cwd=Path("/"))
    argv = _argv(step)
    assert argv[2] == "/home/me/kit/runs/m.tar.gz"
    assert argv[argv.index("--results-repo") + 1] == "/home/me/results"


def test_the_launcher_maps_the_bundle_and_the_pub(tmp_path: Path) -> None:
    pub = tmp_path / "signing.pub"
    pub.write_text(f"{KEY} alice@example.org\n")
    host = {str(tmp_path): "/srv/out", str(pub): "/home/me/.ssh/id_ed25519.pub",
            str(tmp_path / ".b.tar.gz"): "/srv/out.tar.gz"}  # fmt: skip
    env = {"REPRO_KIT_HOST_PATHS": json.dumps(host), "REPRO_KIT_HOST_RESULTS": "/srv/results"}
    step = export_step(tmp_path / ".b.tar.gz", public_key=KEY, key=pub, environ=env, cwd=Path("/"))
    assert _argv(step) == ["repro-kit", "export", "/srv/out.tar.gz", "--results-repo",
                           "/srv/results", "--init", "--public-key",
                           "/home/me/.ssh/id_ed25519.pub"]  # fmt: skip


def test_review_paste_line_and_command() -> None:
    from kit.publish.nextstep import review_paste

    sha = "ab" * 32
    signed = review_paste("m.tar.gz", sha, signed=True)
    assert signed.line == f"repro-kit-bundle: <URL-of-m.tar.gz> sha256:{sha}"
    assert _argv(signed.review) == ["repro-kit", "review", ".", "--base", "main", "--bundle",
                                    f"<URL-of-m.tar.gz>#sha256={sha}",
                                    "--allowed-signers", "ALLOWED_SIGNERS"]  # fmt: skip
    assert any(".github/repro-kit/allowed_signers" in n for n in signed.review.notes)
    unsigned = review_paste("m.tar.gz", sha, signed=False)
    assert _argv(unsigned.review)[-1] == "--allow-unsigned" and unsigned.line == signed.line
