"""Bundles and `repro-kit verify`: determinism, the tamper matrix, and random mutations."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kit.bundle.archive import read_bundle_archive, write_deterministic_targz
from kit.errors import ExitCode
from kit.fsio import dumps_json, sha256_bytes
from kit.signing.policy import AcceptUnsigned
from kit.verify.verified import verify_bundle
from tests.support import REFERENCE_DIR

REF = REFERENCE_DIR / "sentence-transformers__all-MiniLM-L6-v2.json"


def kit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kit", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


@pytest.fixture(scope="session")
def bundle(sts_bundle: Path) -> Path:
    """The session's unsigned STS bundle, made by `repro-kit bundle` (tests/e2e/conftest.py)."""
    return sts_bundle


@pytest.fixture()
def members(bundle: Path) -> dict[str, bytes]:
    return read_bundle_archive(bundle)


def _result_name(members: dict[str, bytes], task: str) -> str:
    return next(n for n in members if n.endswith(f"/{task}.json"))


def _relist(members: dict[str, bytes]) -> dict[str, bytes]:
    """Recompute the manifest's file list (an attacker who updates digests)."""
    manifest = json.loads(members["manifest.json"])
    manifest["files"] = {
        n: {"sha256": sha256_bytes(d), "size": len(d)}
        for n, d in sorted(members.items())
        if n != "manifest.json"
    }
    return {**members, "manifest.json": dumps_json(manifest).encode()}


def _verify_cli(
    path: Path, tmp_path: Path, *extra: str, table: bool = False
) -> subprocess.CompletedProcess:
    """verify as a reviewer runs it; JSON output unless ``table``."""
    before = sorted(p.name for p in tmp_path.iterdir())
    fmt = () if table or "--json" in extra else ("--json",)
    proc = kit("verify", str(path), "--allow-unsigned", *extra, *fmt, cwd=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "verify wrote files"
    assert "Traceback" not in proc.stderr + proc.stdout
    return proc


def _expect(proc: subprocess.CompletedProcess, code: ExitCode, needle: str = "") -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    if needle:
        assert needle in proc.stdout + proc.stderr


def test_bundle_is_deterministic(sts_run: Path, bundle: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.tar.gz"
    assert kit("bundle", str(sts_run), "-o", str(again)).returncode == 0
    assert again.read_bytes() == bundle.read_bytes()
    raw = bundle.read_bytes()
    assert raw[4:8] == b"\0\0\0\0", "gzip header carries no timestamp"
    with tarfile.open(bundle) as tar:
        infos = tar.getmembers()
    assert [i.name for i in infos] == sorted(i.name for i in infos)
    assert {(i.mtime, i.uid, i.gid, i.mode, i.uname, i.gname) for i in infos} == {
        (946684800, 0, 0, 0o644, "", "")
    }


def test_bundle_contents_and_manifest(bundle: Path, members: dict[str, bytes]) -> None:
    m = json.loads(members["manifest.json"])
    assert {"manifest.json", "run.json", "environment.json"} <= set(members)
    assert m["format"] == "repro-kit/bundle" and m["format_version"] == 1
    assert set(m["tasks"]) == {"STSBenchmark", "STS12"}
    for name, t in m["tasks"].items():
        raw = json.loads(members[t["result_file"]])
        assert raw["task_name"] == name
        assert t["entries"][0]["main_score"] == raw["scores"]["test"][0]["main_score"]
    means = m["aggregates"]
    scores = [t["main_score"] for t in m["tasks"].values()]
    assert means["mean_task"] == pytest.approx(sum(scores) / 2)
    assert means["mean_per_type"] == {"STS": pytest.approx(sum(scores) / 2)}
    assert set(m["files"]) == set(members) - {"manifest.json"}
    assert m["environment"]["packages"]["mteb"] == "2.26.24"


def test_verify_passes_with_reference(bundle: Path, tmp_path: Path) -> None:
    proc = _verify_cli(bundle, tmp_path, "--reference", str(REF), "--json")
    _expect(proc, ExitCode.OK)
    report = json.loads(proc.stdout)
    assert [c["name"] for c in report["checks"]] == [
        "archive",
        "signature",
        "schema",
        "integrity",
        "records",
        "scores",
        "aggregates",
        "consistency",
        "summary",
        "complete",
        "reference",
        "reference means",
    ]
    deltas = {r["task"]: r["delta"] for r in report["reference"]["tasks"]}
    assert all(abs(d) < 1e-6 for d in deltas.values())


def test_unsigned_fails_without_allow_unsigned(bundle: Path) -> None:
    proc = kit("verify", str(bundle))
    _expect(proc, ExitCode.UNSIGNED, "unsigned")


def test_schema_command_prints_draft_2020_12() -> None:
    for name in ("manifest", "run", "environment"):
        proc = kit("schema", name)
        schema = json.loads(proc.stdout)
        assert schema["$schema"].endswith("2020-12/schema") and schema["$id"].endswith(":1")
        assert schema["version"] == 1


def test_bundle_refuses_invalid_run_folder(sts_run: Path, tmp_path: Path) -> None:
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(sts_run, bad)
    rec = json.loads((bad / "run.json").read_text())
    rec["resolved"]["batch_size"] = "thirty-two"
    (bad / "run.json").write_text(json.dumps(rec))
    proc = kit("bundle", str(bad), "-o", str(tmp_path / "x.tar.gz"))
    _expect(proc, ExitCode.SCHEMA, "batch_size")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.tar.gz").exists()
    proc = kit("bundle", str(tmp_path / "nope"), "-o", str(tmp_path / "x.tar.gz"))
    _expect(proc, ExitCode.NOT_FOUND)


# ---------------------------------------------------------------- the tamper matrix


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def test_flip_a_byte_in_each_member(members: dict[str, bytes], tmp_path: Path) -> None:
    for name, data in sorted(members.items()):
        if name == "manifest.json":
            continue
        path = tmp_path / "t.tar.gz"
        write_deterministic_targz({**members, name: _flip(data, len(data) // 2)}, path)
        _expect(_verify_cli(path, tmp_path), ExitCode.INTEGRITY, name)


def test_flip_bytes_in_manifest(members: dict[str, bytes], tmp_path: Path) -> None:
    manifest = members["manifest.json"]
    path = tmp_path / "t.tar.gz"
    write_deterministic_targz({**members, "manifest.json": _flip(manifest, 0)}, path)
    _expect(_verify_cli(path, tmp_path), ExitCode.SCHEMA, "not valid JSON")
    digest = json.loads(manifest)["files"]["run.json"]["sha256"]
    at = manifest.index(digest.encode()) + 5
    # another hex digit (a bit flip could leave the hex alphabet and fail the schema instead)
    other = b"1" if manifest[at : at + 1] == b"0" else b"0"
    altered = manifest[:at] + other + manifest[at + 1 :]
    write_deterministic_targz({**members, "manifest.json": altered}, path)
    _expect(_verify_cli(path, tmp_path), ExitCode.INTEGRITY, "run.json")
    spaced = manifest.replace(b'{\n  "aggregates"', b'{\n   "aggregates"')
    write_deterministic_targz({**members, "manifest.json": spaced}, path)
    _expect(_verify_cli(path, tmp_path), ExitCode.SCHEMA, "canonical")


def test_member_deleted_or_added(members: dict[str, bytes], tmp_path: Path) -> None:
    path = tmp_path / "t.tar.gz"
    gone = {n: d for n, d in members.items() if not n.endswith("/STS12.json")}
    write_deterministic_targz(gone, path)
    _expect(_verify_cli(path, tmp_path), ExitCode.INTEGRITY, "STS12.json missing")
    write_deterministic_targz({**members, "extra.txt": b"hello"}, path)
    _expect(_verify_cli(path, tmp_path), ExitCode.INTEGRITY, "extra.txt not listed")


def test_score_changed_in_manifest_only(members: dict[str, bytes], tmp_path: Path) -> None:
    m = json.loads(members["manifest.json"])
    m["tasks"]["STS12"]["main_score"] += 0.01
    path = tmp_path / "t.tar.gz"
    write_deterministic_targz({**members, "manifest.json": dumps_json(m).encode()}, path)
    _expect(_verify_cli(path, tmp_path), ExitCode.SCORES, "STS12")


def test_score_changed_in_raw_file_only(members: dict[str, bytes], tmp_path: Path) -> None:
    name = _result_name(members, "STS12")
    raw = json.loads(members[name])
    raw["scores"]["test"][0]["main_score"] = 0.9
    changed = {**members, name: json.dumps(raw, indent=2).encode()}
    path = tmp_path / "t.tar.gz"
    write_deterministic_targz(changed, path)
    _expect(_verify_cli(path, tmp_path), ExitCode.INTEGRITY, "STS12.json altered")
    write_deterministic_targz(_relist(changed), path)  # digests updated, score not
    _expect(_verify_cli(path, tmp_path), ExitCode.SCORES, "raw results give 0.900000")


def test_manifest_of_another_format_version(members: dict[str, bytes], tmp_path: Path) -> None:
    m = json.loads(members["manifest.json"])
    m["format_version"] = 2
    path = tmp_path / "t.tar.gz"
    write_deterministic_targz({**members, "manifest.json": dumps_json(m).encode()}, path)
    _expect(_verify_cli(path, tmp_path), ExitCode.SCHEMA, "version 2")


def test_malformed_json_member(members: dict[str, bytes], tmp_path: Path) -> None:
    path = tmp_path / "t.tar.gz"
    write_deterministic_targz(_relist({**members, "run.json": b'{"format": '}), path)
    _expect(_verify_cli(path, tmp_path), ExitCode.SCHEMA, "run.json: not valid JSON")


def _hand_tar(path: Path, entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    path.write_bytes(gzip.compress(buf.getvalue()))


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


@pytest.mark.parametrize(
    "case", ["traversal", "absolute", "symlink", "hardlink", "device", "duplicate"]
)
def test_unsafe_members(members: dict[str, bytes], tmp_path: Path, case: str) -> None:
    entries = [_file(n, d) for n, d in sorted(members.items())]
    if case == "traversal":
        entries.append(_file("../../evil.txt", b"pwned"))
    elif case == "absolute":
        entries.append(_file(str(tmp_path / "evil.txt"), b"pwned"))
    elif case in ("symlink", "hardlink"):
        info = tarfile.TarInfo("link.json")
        info.type = tarfile.SYMTYPE if case == "symlink" else tarfile.LNKTYPE
        info.linkname = "/etc/passwd"
        entries.append((info, None))
    elif case == "device":
        info = tarfile.TarInfo("dev")
        info.type = tarfile.CHRTYPE
        entries.append((info, None))
    else:
        entries.append(_file("./run.json", b"{}"))
    path = tmp_path / "t.tar.gz"
    _hand_tar(path, entries)
    _expect(_verify_cli(path, tmp_path), ExitCode.UNSAFE_ARCHIVE)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path.parent / "evil.txt").exists()


@pytest.mark.parametrize(
    "case", ["truncated", "tail-cut", "not-archive", "empty", "text-gzip", "bomb", "missing"]
)
def test_broken_archives(bundle: Path, tmp_path: Path, case: str) -> None:
    path = tmp_path / "t.tar.gz"
    raw = bundle.read_bytes()
    if case == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif case == "tail-cut":
        path.write_bytes(raw[:-6])
    elif case == "not-archive":
        path.write_bytes(b"PK\x03\x04 this is not a tar.gz" * 10)
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "text-gzip":
        path.write_bytes(gzip.compress(b"just some text, not a tar archive\n" * 20))
    elif case == "bomb":
        _hand_tar(path, [_file("manifest.json", b"\0" * 60_000_000)])
        assert path.stat().st_size < 200_000
    else:
        path = tmp_path / "missing.tar.gz"
    # a missing bundle file is NOT_FOUND (3) in verify as in export, report and compare
    code = ExitCode.NOT_FOUND if case == "missing" else ExitCode.UNSAFE_ARCHIVE
    proc = _verify_cli(path, tmp_path)
    _expect(proc, code)
    failed = [c for c in json.loads(proc.stdout)["checks"] if c["ok"] is False]
    assert len(failed) == 1 and "\n" not in failed[0]["reason"]
    table = _verify_cli(path, tmp_path, table=True)
    assert table.returncode == code and "FAIL" in table.stdout


# ---------------------------------------------------------------- random mutations


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_random_mutations_never_crash_and_never_pass(bundle: Path, tmp_path: Path, data) -> None:
    members = read_bundle_archive(bundle)
    path = tmp_path / "m.tar.gz"
    kind = data.draw(
        st.sampled_from(
            [
                "archive-byte",
                "archive-truncate",
                "member-byte",
                "member-delete",
                "member-add",
                "member-truncate",
            ]
        )
    )
    if kind.startswith("archive"):
        raw = bytearray(bundle.read_bytes())
        if kind == "archive-byte":
            # bytes 4-9 of a gzip header (mtime, flags, OS) carry no content; all else does
            at = data.draw(st.integers(0, len(raw) - 1).filter(lambda i: not 4 <= i <= 9))
            raw[at] ^= data.draw(st.integers(1, 255))
        else:
            raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
        path.write_bytes(bytes(raw))
    else:
        name = data.draw(st.sampled_from(sorted(members)))
        changed = dict(members)
        if kind == "member-byte":
            at = data.draw(st.integers(0, len(members[name]) - 1))
            blob = bytearray(members[name])
            blob[at] ^= data.draw(st.integers(1, 255))
            changed[name] = bytes(blob)
        elif kind == "member-delete":
            del changed[name]
        elif kind == "member-add":
            changed[name + ".extra"] = data.draw(st.binary(max_size=64))
        else:
            changed[name] = members[name][: data.draw(st.integers(0, len(members[name]) - 1))]
        write_deterministic_targz(changed, path)
    report = verify_bundle(path, signature=AcceptUnsigned(None))
    assert not report.ok, kind
    assert report.exit_code != ExitCode.OK


# ---------------------------------------------------------------- reference and compare


def test_biosses_differs_from_published(biosses_run: Path, tmp_path: Path) -> None:
    """The shared BIOSSES text differs slightly from mteb's copy: verify must notice."""
    path = tmp_path / "b.tar.gz"
    assert kit("bundle", str(biosses_run), "-o", str(path)).returncode == 0
    proc = _verify_cli(path, tmp_path, "--reference", str(REF), "--json")
    _expect(proc, ExitCode.REFERENCE)
    rows = {r["task"]: r for r in json.loads(proc.stdout)["reference"]["tasks"]}
    claimed = json.loads(read_bundle_archive(path)["manifest.json"])["tasks"]["BIOSSES"]
    published = json.loads(REF.read_text())["task_main_scores"]["BIOSSES"]
    assert rows["BIOSSES"]["ok"] is False
    assert rows["BIOSSES"]["delta"] == claimed["main_score"] - published  # score - reference
    assert rows["STSBenchmark"]["ok"] is True
    table = _verify_cli(path, tmp_path, "--reference", str(REF), table=True)
    assert "BIOSSES" in table.stdout and "FAIL" in table.stdout


def test_reference_as_folder_of_mteb_files(bundle: Path, sts_run: Path, tmp_path: Path) -> None:
    proc = _verify_cli(bundle, tmp_path, "--reference", str(sts_run / "results"), "--json")
    _expect(proc, ExitCode.OK)
    assert all(r["delta"] == 0 for r in json.loads(proc.stdout)["reference"]["tasks"])


def test_compare_explains_a_difference(sts_run: Path, bundle: Path, tmp_path: Path) -> None:
    import shutil

    other = tmp_path / "other"
    shutil.copytree(sts_run, other)
    rec = json.loads((other / "run.json").read_text())
    rec["encode"]["precision"] = "bf16"
    rec["tasks"][0]["dataset"]["revision_loaded"] = "f" * 40
    (other / "run.json").write_text(json.dumps(rec))
    env = json.loads((other / "environment.json").read_text())
    env["packages"]["transformers"] = "0.0.1"
    (other / "environment.json").write_text(json.dumps(env))
    proc = kit("compare", str(bundle), str(other), "--json")
    assert proc.returncode == 0, proc.stderr
    diffs = [d["what"] for d in json.loads(proc.stdout)["differences"]]
    assert diffs[0].startswith("dataset revision")
    assert diffs.index("precision") < diffs.index("transformers")
    table = kit("compare", str(bundle), str(other))
    assert "precision" in table.stdout and "STS12" in table.stdout
