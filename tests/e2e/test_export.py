"""`repro-kit export`: a verified bundle laid out as MTEB's results repository, read by mteb."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from kit.bundle.archive import read_bundle_archive, write_deterministic_targz
from kit.bundle.write import write_bundle
from kit.errors import ExitCode, KitError
from kit.publish.export import revision_folder
from kit.publish.repomerge import canonical_meta
from tests.support import kit_here, run_kit


def _manifest(bundle: Path) -> dict:
    return json.loads(read_bundle_archive(bundle)["manifest.json"])


def _folder(manifest: dict) -> str:
    m = manifest["model"]
    return f"results/{m['name'].replace('/', '__')}/{m['revision']}"


def _export(bundle: Path, repo: Path, hf_home: Path, *extra: str) -> subprocess.CompletedProcess:
    proc = kit_here(["export", bundle, "--results-repo", repo, "--init", *extra], hf_home)
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc


def _files(repo: Path) -> list[Path]:
    """The files of a results checkout, its git repository left out."""
    return [p for p in repo.rglob("*") if p.is_file() and ".git" not in p.relative_to(repo).parts]


def _tree(repo: Path) -> dict[str, bytes]:
    return {
        p.relative_to(repo).as_posix(): p.read_bytes()
        for p in repo.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(repo).parts  # --init's git repository
    }


def test_export_reads_back_with_mteb(sts_bundle: Path, hf_home: Path, tmp_path: Path) -> None:
    import mteb

    repo = tmp_path / "results-repo"
    proc = _export(sts_bundle, repo, hf_home, "--allow-unsigned")
    assert proc.returncode == 0, proc.stderr
    manifest, members = _manifest(sts_bundle), read_bundle_archive(sts_bundle)
    folder = _folder(manifest)
    expected = {f"{folder}/{t}.json" for t in manifest["tasks"]}
    expected |= {f"{folder}/model_meta.json", f"{folder}/run_settings.jsonl"}
    tree = _tree(repo)
    assert set(tree) == expected
    for rel, data in tree.items():  # mteb's own files, byte-for-byte as the bundle holds them
        if rel.endswith("/model_meta.json"):  # written canonically: lists of names sorted
            assert data == canonical_meta(members[rel])
            assert json.loads(data)["name"] == json.loads(members[rel])["name"]
        else:
            assert data == members[rel], rel
        assert f"written     {repo / rel}" in proc.stdout

    loaded = mteb.ResultCache(repo).load_results(
        models=[manifest["model"]["name"]], include_remote=False, require_model_meta=True
    )
    [model] = loaded.model_results
    assert (model.model_name, model.model_revision) == (
        manifest["model"]["name"],
        manifest["model"]["revision"],
    )
    scores = {r.task_name: r.get_score() for r in model.task_results}
    assert set(scores) == set(manifest["tasks"])
    for task, claimed in manifest["tasks"].items():
        assert scores[task] == pytest.approx(claimed["main_score"], abs=1e-12), task


def test_reexport_is_idempotent(sts_bundle: Path, hf_home: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    other = repo / "results" / "org__other-model" / "rev" / "STS12.json"
    other.parent.mkdir(parents=True)
    other.write_text("{}")  # someone else's results in the checkout stay untouched
    subprocess.run(["git", "init", "-q", str(repo)], check=True)  # a results checkout
    assert _export(sts_bundle, repo, hf_home, "--allow-unsigned").returncode == 0
    before = {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in _files(repo)}
    proc = _export(sts_bundle, repo, hf_home, "--allow-unsigned")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == len(before) - 1 and all(ln.startswith("unchanged ") for ln in lines)
    assert {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in _files(repo)} == before
    assert other.read_text() == "{}"


def test_model_meta_of_other_content_needs_overwrite(
    sts_bundle: Path, hf_home: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    assert _export(sts_bundle, repo, hf_home, "--allow-unsigned").returncode == 0
    folder = repo / _folder(_manifest(sts_bundle))
    meta = json.loads((folder / "model_meta.json").read_text())
    written = (folder / "model_meta.json").read_bytes()
    meta["loader_kwargs"] = {"device": "cuda"}  # the same model, run elsewhere
    (folder / "model_meta.json").write_text(json.dumps(meta, indent=4))
    (folder / "STSBenchmark.json").unlink()
    proc = _export(sts_bundle, repo, hf_home, "--allow-unsigned")
    assert proc.returncode == ExitCode.OUTPUT, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert "model_meta.json exists with other content (loader_kwargs differs)" in line
    assert "--overwrite" in line
    assert not (folder / "STSBenchmark.json").exists(), "a refused export wrote files"

    proc = _export(sts_bundle, repo, hf_home, "--allow-unsigned", "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert f"replaced    {folder / 'model_meta.json'}" in proc.stdout
    assert f"written     {folder / 'STSBenchmark.json'}" in proc.stdout
    assert (folder / "model_meta.json").read_bytes() == written


def test_tampered_bundle_is_refused(sts_bundle: Path, hf_home: Path, tmp_path: Path) -> None:
    members = read_bundle_archive(sts_bundle)
    name = next(n for n in members if n.endswith("/STS12.json"))
    raw = json.loads(members[name])
    raw["scores"]["test"][0]["main_score"] = 0.99  # a better score, digests not updated
    bad = tmp_path / "tampered.tar.gz"
    write_deterministic_targz({**members, name: json.dumps(raw).encode()}, bad)
    repo = tmp_path / "repo"
    proc = _export(bad, repo, hf_home, "--allow-unsigned")
    assert proc.returncode == ExitCode.INTEGRITY, proc.stderr
    assert "integrity" in proc.stderr and "STS12.json" in proc.stderr
    assert not repo.exists()


def test_missing_bundle_is_one_line(hf_home: Path, tmp_path: Path) -> None:
    proc = _export(tmp_path / "nope.tar.gz", tmp_path / "repo", hf_home, "--allow-unsigned")
    assert proc.returncode == ExitCode.NOT_FOUND
    assert proc.stderr.strip().splitlines() == [
        f"repro-kit: error: {tmp_path / 'nope.tar.gz'} not found"
    ]
    assert not (tmp_path / "repo").exists()


def test_signed_bundle_needs_its_key(biosses_bundle: Path, hf_home: Path, tmp_path: Path) -> None:
    pub = biosses_bundle.parent / "key.pub"
    proc = _export(biosses_bundle, tmp_path / "a", hf_home)
    assert proc.returncode == ExitCode.UNSIGNED, proc.stderr  # signed, no trust anchor: 20
    assert not (tmp_path / "a").exists()
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    proc = _export(biosses_bundle, tmp_path / "b", hf_home, "--public-key", f"{other}.pub")
    assert proc.returncode == ExitCode.KEY_NOT_ALLOWED, proc.stderr
    proc = _export(biosses_bundle, tmp_path / "c", hf_home, "--public-key", str(pub))
    assert proc.returncode == 0, proc.stderr
    manifest = _manifest(biosses_bundle)
    assert (tmp_path / "c" / _folder(manifest) / "BIOSSES.json").is_file()
    proc = _export(
        biosses_bundle,
        tmp_path / "d",
        hf_home,
        "--public-key",
        str(pub),
        "--allowed-signers",
        str(pub),
    )
    assert proc.returncode == ExitCode.USAGE


def test_model_meta_made_as_mteb_does_when_bundle_lacks_it(
    sts_run: Path, hf_home: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(sts_run, run)
    [meta_file] = run.glob("results/*/*/model_meta.json")
    written_by_mteb = json.loads(meta_file.read_text())
    meta_file.unlink()
    bundle = tmp_path / "nometa.tar.gz"
    write_bundle(run, bundle)
    repo = tmp_path / "repo"
    first = run_kit(
        ["export", str(bundle), "--results-repo", str(repo), "--init", "--allow-unsigned"],
        hf_home,
        PYTHONHASHSEED="1",
    )
    assert first.returncode == 0, first.stderr
    made = repo / _folder(_manifest(bundle)) / "model_meta.json"
    # written canonically (lists of names sorted; mteb lists a set in hash order)
    assert made.read_bytes() == canonical_meta(json.dumps(written_by_mteb).encode())
    again = run_kit(
        ["export", str(bundle), "--results-repo", str(repo), "--init", "--allow-unsigned"],
        hf_home,
        PYTHONHASHSEED="2",
    )
    assert again.returncode == 0, again.stderr
    assert f"unchanged   {made}" in again.stdout


def test_layout_and_merge_rules() -> None:
    assert revision_folder("BAAI/bge-small-en-v1.5", "5c38ec7").as_posix() == (
        "results/BAAI__bge-small-en-v1.5/5c38ec7"
    )
    for model, rev in (("..", "r"), ("org/m", "../x"), ("org/m", "")):
        with pytest.raises(KitError) as e:
            revision_folder(model, rev)
        assert e.value.code == ExitCode.UNSAFE_ARCHIVE
