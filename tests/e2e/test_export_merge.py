"""`repro-kit export` into a live results repository (a real git checkout laid out like
github.com/embeddings-benchmark/results): merge, never drop; the repository's rules first."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest

from kit.bundle.archive import read_bundle_archive
from kit.errors import ExitCode
from kit.publish.reporules import Layout, check_rules
from tests.support import git, kit_here


@pytest.fixture(scope="session")
def sts_bundle2(sts_bundle: Path) -> Path:
    """The session's unsigned STS bundle (tests/e2e/conftest.py)."""
    return sts_bundle


def _members(bundle: Path) -> dict[str, bytes]:
    return read_bundle_archive(bundle)


def _folder(bundle: Path) -> str:
    m = json.loads(_members(bundle)["manifest.json"])["model"]
    return f"results/{m['name'].replace('/', '__')}/{m['revision']}"


def _commit(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)


def _export(bundle: Path, repo: Path, hf_home: Path, *extra: str) -> subprocess.CompletedProcess:
    trust = ["--public-key", str(bundle.parent / "key.pub")]
    if not (bundle.parent / "key.pub").exists():
        trust = ["--allow-unsigned"]
    args = ["export", str(bundle), "--results-repo", str(repo), "--init", *trust, *extra]
    proc = kit_here(args, hf_home)
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc


def _subsets(path: Path) -> dict[tuple[str, str], dict]:
    data = json.loads(path.read_text())
    return {(s, e["hf_subset"]): e for s, es in data["scores"].items() for e in es}


def _run_settings_keys(path: Path) -> set[tuple[str, str, str]]:
    keys = set()
    for line in path.read_text().splitlines():
        e = json.loads(line)
        keys |= {(e["task"], sp, sub) for sp in e["splits"] for sub in e["subsets"]}
    return keys


@pytest.fixture()
def live_repo(sts_bundle2: Path, biosses_bundle: Path, tmp_path: Path) -> Path:
    """A git checkout holding an older STS12.json of the same model and revision with an
    extra subset, another task (BIOSSES, from a second real run) and its run settings."""
    repo = tmp_path / "results"
    folder = repo / _folder(sts_bundle2)
    folder.mkdir(parents=True)
    ours, other = _members(sts_bundle2), _members(biosses_bundle)
    src = _folder(sts_bundle2)
    sts12 = json.loads(ours[f"{src}/STS12.json"])
    extra = dict(sts12["scores"]["test"][0], hf_subset="extra", main_score=0.5)
    sts12["scores"]["test"].append(extra)
    sts12["scores"]["test"][0]["main_score"] -= 0.0004  # an earlier honest run, within 0.001
    (folder / "STS12.json").write_text(json.dumps(sts12, indent=2))
    (folder / "BIOSSES.json").write_bytes(other[f"{src}/BIOSSES.json"])
    biosses_settings = [
        ln for ln in other[f"{src}/run_settings.jsonl"].decode().splitlines() if "BIOSSES" in ln
    ]
    (folder / "run_settings.jsonl").write_text("\n".join(biosses_settings) + "\n")
    meta = json.loads(ours[f"{src}/model_meta.json"])
    meta["training_datasets"] = sorted(meta["training_datasets"], reverse=True)  # set order
    (folder / "model_meta.json").write_text(json.dumps(meta, indent=4))
    git(repo, "init", "-q", "-b", "main")
    _commit(repo, "older results")
    return repo


def test_merge_keeps_both_and_is_idempotent(
    sts_bundle2: Path, live_repo: Path, hf_home: Path
) -> None:
    folder = live_repo / _folder(sts_bundle2)
    old_biosses = (folder / "BIOSSES.json").read_bytes()
    old_sts12 = (folder / "STS12.json").read_bytes()
    proc = _export(sts_bundle2, live_repo, hf_home)
    assert proc.returncode == 0, proc.stderr
    # STS12 holds the bundle's test/default within 0.001 (and a subset more): left alone, as
    # mteb's own submit leaves it; issue 24 (it was merged, its evaluation times summed)
    assert f"unchanged   {folder / 'STS12.json'}" in proc.stdout
    assert f"unchanged   {folder / 'model_meta.json'}" in proc.stdout  # same content, other order
    assert (folder / "STS12.json").read_bytes() == old_sts12
    merged = _subsets(folder / "STS12.json")
    assert set(merged) == {("test", "default"), ("test", "extra")}
    bundle_sts12 = json.loads(_members(sts_bundle2)[f"{_folder(sts_bundle2)}/STS12.json"])
    assert merged[("test", "default")]["main_score"] == pytest.approx(
        bundle_sts12["scores"]["test"][0]["main_score"] - 0.0004, abs=1e-9
    )
    assert merged[("test", "extra")]["main_score"] == 0.5
    assert (folder / "BIOSSES.json").read_bytes() == old_biosses
    assert (folder / "STSBenchmark.json").is_file()
    assert _run_settings_keys(folder / "run_settings.jsonl") == {
        ("BIOSSES", "test", "default"),
        ("STSBenchmark", "test", "default"),  # no STS12 line: its file was left alone
    }
    assert "written by mteb 2." in proc.stderr and "manifest sha256" in proc.stderr
    _commit(live_repo, "export")
    again = _export(sts_bundle2, live_repo, hf_home)
    assert again.returncode == 0, again.stderr
    assert all(ln.startswith("unchanged ") for ln in again.stdout.splitlines())
    assert git(live_repo, "status", "--porcelain") == ""


def test_drift_refused_unless_allowed(sts_bundle2: Path, live_repo: Path, hf_home: Path) -> None:
    folder = live_repo / _folder(sts_bundle2)
    data = json.loads((folder / "STS12.json").read_text())
    bundled = json.loads(_members(sts_bundle2)[f"{_folder(sts_bundle2)}/STS12.json"])
    claimed = bundled["scores"]["test"][0]["main_score"]
    data["scores"]["test"][0]["main_score"] = claimed + 0.002  # the repository's older score
    (folder / "STS12.json").write_text(json.dumps(data, indent=2))
    _commit(live_repo, "an older score 0.002 away")
    proc = _export(sts_bundle2, live_repo, hf_home)
    assert proc.returncode == ExitCode.DRIFT, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert "drift" in line and "test/default" in line and "--allow-drift" in line
    assert "nothing written" in line
    assert git(live_repo, "status", "--porcelain") == ""
    check = _export(sts_bundle2, live_repo, hf_home, "--check")
    assert check.returncode == ExitCode.DRIFT
    rows = [ln for ln in check.stdout.splitlines() if " drift " in ln and "STS12" in ln]
    [row] = [ln for ln in rows if "test/default" in ln]  # test/extra: a row too, unmoved
    assert "FAIL" in row and "over 0.001" in row
    ok = _export(sts_bundle2, live_repo, hf_home, "--allow-drift")
    assert ok.returncode == 0, ok.stderr
    assert _subsets(folder / "STS12.json")[("test", "default")]["main_score"] == pytest.approx(
        claimed, abs=1e-6
    )
    assert ("test", "extra") in _subsets(folder / "STS12.json")


def test_two_honest_runs_without_overwrite(
    sts_bundle2: Path, biosses_bundle: Path, hf_home: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "results"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    assert _export(sts_bundle2, repo, hf_home).returncode == 0
    _commit(repo, "first run")
    proc = _export(biosses_bundle, repo, hf_home)  # STSBenchmark again, from a second real run
    assert proc.returncode == 0, proc.stderr
    folder = repo / _folder(sts_bundle2)
    assert {p.name for p in folder.iterdir()} == {
        "BIOSSES.json",
        "STS12.json",
        "STSBenchmark.json",
        "model_meta.json",
        "run_settings.jsonl",
    }
    assert {t for t, _, _ in _run_settings_keys(folder / "run_settings.jsonl")} == {
        "BIOSSES",
        "STS12",
        "STSBenchmark",
    }
    _commit(repo, "second run")
    assert _export(biosses_bundle, repo, hf_home).returncode == 0
    assert git(repo, "status", "--porcelain") == ""


RULES = (
    "naming",
    "revision",
    "organisation",
    "task name",
    "one revision",
    "size",
    "model in mteb",
    "nothing removed",
)


def _rows(stdout: str, rule: str) -> list[str]:
    return [ln for ln in stdout.splitlines() if f"│ {rule} " in ln or f"┃ {rule} " in ln]


def test_check_lists_every_rule_and_writes_nothing(
    sts_bundle2: Path, live_repo: Path, hf_home: Path
) -> None:
    proc = _export(sts_bundle2, live_repo, hf_home, "--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for rule in (*RULES, "drift"):
        rows = _rows(proc.stdout, rule)
        assert rows and all(" pass " in r for r in rows), rule
    assert git(live_repo, "status", "--porcelain") == ""


def test_planted_violations_fail_with_their_reason(
    sts_bundle2: Path, live_repo: Path, hf_home: Path
) -> None:
    folder = live_repo / _folder(sts_bundle2)
    sts12 = json.loads((folder / "STS12.json").read_text())
    sts12["scores"]["test"][0]["languages"].append("fra-Latn")  # the export would drop it
    sts12["scores"]["test"][0]["main_score"] += 0.002  # when it replaces the entry (drift)
    (folder / "STS12.json").write_text(json.dumps(sts12, indent=2))
    (folder / "Wrong.json").write_text(json.dumps({**sts12, "task_name": "STS13"}))
    big = {**sts12, "task_name": "Big", "padding": "x" * (10 * 1024 * 1024)}
    (folder / "Big.json").write_text(json.dumps(big))
    other = folder.parent / ("0" * 40)
    other.mkdir()
    shutil.copy(folder / "BIOSSES.json", other / "STSBenchmark.json")
    _commit(live_repo, "planted")
    proc = _export(sts_bundle2, live_repo, hf_home, "--check")
    assert proc.returncode == ExitCode.EXPORT_RULES, proc.stderr
    expect = {
        "task name": "file name Wrong.json but task_name 'STS13'",
        "one revision": f"also has STSBenchmark.json under {'0' * 40}",
        "size": "over the 10 MB limit",
        "nothing removed": "languages removed: test/default: fra-Latn",
    }
    for rule, reason in expect.items():
        assert any("FAIL" in r and reason in r for r in _rows(proc.stdout, rule)), rule
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("repro-kit: error: results-repository rule")
    assert git(live_repo, "status", "--porcelain") == ""
    written = _export(sts_bundle2, live_repo, hf_home)  # the same rules refuse a real export
    assert written.returncode == ExitCode.EXPORT_RULES
    assert "nothing written" in written.stderr
    assert git(live_repo, "status", "--porcelain") == ""


def test_model_rules_on_real_files(sts_bundle2: Path) -> None:
    """naming, revision, organisation and registry, on the bundle's real files."""
    members, src = _members(sts_bundle2), _folder(sts_bundle2)
    meta = json.loads(members[f"{src}/model_meta.json"])
    files = {n.rsplit("/", 1)[1]: d for n, d in members.items() if n.startswith(src + "/")}
    parsed = {n: json.loads(d) for n, d in files.items() if n.endswith(".json")}

    def rules(meta: dict, folder: str, registered: bool = True, entry: bool = False) -> dict:
        layout = Layout(PurePosixPath(folder), meta, files, {}, {}, parsed, {}, {})
        out = check_rules(layout, registered=registered, new_model_entry=entry, allow_drift=False)
        return {r.rule: r for r in out}

    good = rules(meta, src)
    assert not any(r.failed for r in good.values())
    moved = rules(meta, "results/sentence-transformers__all-MiniLM-L6-v2/main")
    assert moved["naming"].failed and "belongs in" in moved["naming"].reason
    placeholder = {**meta, "revision": "no_revision_available"}
    folder = "results/sentence-transformers__all-MiniLM-L6-v2/no_revision_available"
    bad = rules(placeholder, folder)
    assert bad["revision"].failed and "not a 40-hex commit" in bad["revision"].reason
    assert not bad["naming"].failed
    no_org = rules(
        {**meta, "name": "all-MiniLM-L6-v2"}, f"results/all-MiniLM-L6-v2/{meta['revision']}"
    )
    assert no_org["organisation"].failed and "no organisation" in no_org["organisation"].reason
    unknown = rules(meta, src, registered=False)
    assert unknown["model in mteb"].failed and "not in mteb's model registry" in (
        unknown["model in mteb"].reason
    )
    new = rules(meta, src, registered=False, entry=True)
    assert (
        new["model in mteb"].status == "note"
        and "mteb_model_meta.py" in new["model in mteb"].reason
    )
