"""Verify's consistency step (16) and partial bundles (17), on real runs and real bundles.

Each tampered bundle is made as an attacker would: records edited, the manifest rebuilt with
the kit's own code (so schema, integrity, scores and summary agree) and re-signed with a
throwaway key made by the real ssh-keygen. Only the records' disagreement is left to catch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from kit.bundle.archive import read_bundle_archive, write_deterministic_targz
from kit.bundle.manifest import MANIFEST, SIGNATURE, build_manifest, manifest_bytes
from kit.errors import ExitCode, KitError
from kit.fsio import sha256_bytes
from kit.signing.keys import load_private_key
from kit.signing.sshsig import sign
from tests.support import kit_here, make_hf_home, run_kit

MTEB_VERSION = "2.26.24"


@pytest.fixture(scope="module", autouse=True)
def layout_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh mteb task-layout cache for this module, in-process and in subprocesses."""
    d = tmp_path_factory.mktemp("xdg")
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(d)
    yield d
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("key")
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "t@example.org", "-f", str(d / "k")],
        check=True,
    )
    return d / "k"


@pytest.fixture(scope="module")
def signed(sts_run: Path, key: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("signed") / "sts.tar.gz"
    proc = subprocess.run(
        [sys.executable, "-m", "kit", "bundle", str(sts_run), "-o", str(dest), "--sign", str(key)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return dest


@pytest.fixture(scope="module")
def partial_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run that fails: STS12's data is not in the (offline) cache, STSBenchmark's is."""
    d = tmp_path_factory.mktemp("partial")
    hf = make_hf_home(d / "hf", ("mteb___stsbenchmark-sts",))
    out = d / "run"
    proc = run_kit(
        ["evaluate", "--tasks", "STSBenchmark,STS12", "-o", str(out), "--offline", "-q"], hf
    )
    assert proc.returncode == ExitCode.DATA_MISSING, proc.stderr
    return out


def _resign(members: dict[str, bytes], key: Path) -> dict[str, bytes]:
    out = dict(members)
    out[SIGNATURE] = sign(out[MANIFEST], load_private_key(key)).encode("ascii")
    return out


def _rebuild(members: dict[str, bytes], key: Path, **drop: bool) -> dict[str, bytes]:
    """The manifest rebuilt from the (edited) records by the kit's own code, re-signed."""
    files = {n: d for n, d in members.items() if n not in (MANIFEST, SIGNATURE)}
    manifest = build_manifest(
        json.loads(files["run.json"]), json.loads(files["environment.json"]), files
    )
    for k in drop:
        manifest.pop(k, None)
    return _resign({**files, MANIFEST: manifest_bytes(manifest)}, key)


def _relist(members: dict[str, bytes], key: Path) -> dict[str, bytes]:
    """Only the manifest's file list updated (sizes, digests), re-signed."""
    manifest = json.loads(members[MANIFEST])
    manifest["files"] = {
        n: {"sha256": sha256_bytes(d), "size": len(d)}
        for n, d in sorted(members.items())
        if n not in (MANIFEST, SIGNATURE)
    }
    return _resign({**members, MANIFEST: manifest_bytes(manifest)}, key)


def _verify(path: Path, key: Path, *extra: str) -> tuple[int, str, str]:
    """``repro-kit verify`` in-process: (exit code, stdout, stderr); an exception is a bug (1)."""
    proc = kit_here(["verify", path, "--public-key", f"{key}.pub", *extra])
    return proc.returncode, proc.stdout, proc.stderr


def _write(members: dict[str, bytes], path: Path) -> Path:
    write_deterministic_targz(members, path)
    return path


def _result(members: dict[str, bytes], task: str) -> str:
    return next(n for n in members if n.endswith(f"/{task}.json"))


def _expect(code_out_err: tuple[int, str, str], code: ExitCode, *words: str) -> None:
    code_got, out, err = code_out_err
    assert code_got == code, (code_got, out[-3000:], err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for w in words:
        assert w in lines[0], lines[0]


# ---------------------------------------------------------------- a consistent bundle


def test_real_bundle_is_consistent_and_the_layout_is_cached(
    signed: Path, key: Path, layout_cache: Path, tmp_path: Path
) -> None:
    code, out, err = _verify(signed, key, "--json")
    assert code == 0, (out, err)
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert (
        checks["consistency"]["ok"] is True
        and "splits and subsets" in checks["consistency"]["reason"]
    )
    assert checks["complete"]["ok"] is True
    cache = json.loads((layout_cache / "repro-kit" / f"mteb-tasks-{MTEB_VERSION}.json").read_text())
    assert cache["layouts"][""]["STS12"]["eval_splits"] == ["test"]
    # once cached, verify does not import mteb (seconds) at all
    probe = (
        "import sys; from pathlib import Path; from kit.signing.policy import AcceptUnsigned; "
        "from kit.verify.verified import verify_bundle; "
        f"r = verify_bundle(Path({str(signed)!r}), signature=AcceptUnsigned(None)); "
        "print(int(r.exit_code), 'mteb' in sys.modules)"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(layout_cache)}
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert proc.stdout.split() == ["0", "False"], proc.stderr


# ---------------------------------------------------------------- one test per class


def test_extra_result_file_not_in_run_json(signed: Path, key: Path, tmp_path: Path) -> None:
    members = read_bundle_archive(signed)
    name = _result(members, "STS12")
    raw = json.loads(members[name])
    raw["task_name"] = "STS13"
    extra = {**members, name.replace("STS12", "STS13"): json.dumps(raw).encode()}
    path = _write(_rebuild(extra, key), tmp_path / "t.tar.gz")
    _expect(_verify(path, key), ExitCode.INCONSISTENT, "STS13.json", "run.json does not list")


def test_run_json_names_another_model(signed: Path, key: Path, tmp_path: Path) -> None:
    members = read_bundle_archive(signed)
    run = json.loads(members["run.json"])
    run["resolved"]["model"] = "BAAI/bge-small-en-v1.5"
    changed = {**members, "run.json": json.dumps(run).encode()}
    path = _write(_rebuild(changed, key), tmp_path / "t.tar.gz")
    _expect(_verify(path, key), ExitCode.INCONSISTENT, "bge-small-en-v1.5")
    # model_meta.json naming another model than run.json and the result folder
    meta_name = next(n for n in members if n.endswith("/model_meta.json"))
    meta = json.loads(members[meta_name])
    meta["name"] = "BAAI/bge-small-en-v1.5"
    changed = {**members, meta_name: json.dumps(meta).encode()}
    path = _write(_rebuild(changed, key), tmp_path / "t.tar.gz")
    _expect(_verify(path, key), ExitCode.INCONSISTENT, "model_meta.json names model BAAI")


def test_run_json_main_score_differs_from_raw_file(signed: Path, key: Path, tmp_path: Path) -> None:
    members = read_bundle_archive(signed)
    run = json.loads(members["run.json"])
    run["tasks"][1]["main_score"] += 1e-6
    changed = {**members, "run.json": json.dumps(run).encode()}
    path = _write(_rebuild(changed, key), tmp_path / "t.tar.gz")
    _expect(_verify(path, key), ExitCode.INCONSISTENT, run["tasks"][1]["name"], "main_score")


def test_validation_split_presented_as_test(signed: Path, key: Path, tmp_path: Path) -> None:
    """The result file's split renamed and run.json's eval_splits edited to match: the scores
    recompute, the manifest agrees; only mteb's definition of the task says otherwise."""
    members = read_bundle_archive(signed)
    name = _result(members, "STSBenchmark")
    raw = json.loads(members[name])
    raw["scores"] = {"validation": raw["scores"]["test"]}
    run = json.loads(members["run.json"])
    for t in run["tasks"]:
        if t["name"] == "STSBenchmark":
            t["eval_splits"] = ["validation"]
    run["mteb_version"] = "2.0.0"
    changed = {**members, name: json.dumps(raw).encode(), "run.json": json.dumps(run).encode()}
    path = _write(_rebuild(changed, key), tmp_path / "t.tar.gz")
    _expect(
        _verify(path, key),
        ExitCode.INCONSISTENT,
        "STSBenchmark: result file has splits ['validation'], mteb evaluates ['test']",
        f"mteb {MTEB_VERSION}'s definition",
        "made with mteb 2.0.0",
    )


def test_partial_run_is_bundled_marked_and_refused_unless_allowed(
    partial_run: Path, key: Path, tmp_path: Path
) -> None:
    run = json.loads((partial_run / "run.json").read_text())
    assert run["status"] == "failed"
    assert [(t["name"], t["status"]) for t in run["tasks"]] == [
        ("STSBenchmark", "complete"),
        ("STS12", "failed"),
    ]
    bundle = tmp_path / "partial.tar.gz"
    proc = run_kit(["bundle", str(partial_run), "-o", str(bundle), "--sign", str(key)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "PARTIAL" in proc.stdout and "partial" in proc.stderr and "STS12 failed" in proc.stderr
    members = read_bundle_archive(bundle)
    manifest = json.loads(members[MANIFEST])
    assert set(manifest["tasks"]) == {"STSBenchmark"}
    assert manifest["partial"]["status"] == "failed"
    (entry,) = manifest["partial"]["tasks"]
    assert entry["name"] == "STS12" and entry["status"] == "failed" and "STS12" in entry["error"]
    _expect(_verify(bundle, key), ExitCode.PARTIAL, "STS12 failed", "--allow-partial")
    code, out, err = _verify(bundle, key, "--allow-partial")
    assert code == 0 and "partial" in out and err == "", (out, err)
    # consumers: export always refuses; report only with --allow-partial
    pub = f"{key}.pub"
    proc = run_kit(
        ["export", str(bundle), "--results-repo", str(tmp_path / "r"), "--public-key", pub],
        tmp_path,
    )
    assert proc.returncode == ExitCode.PARTIAL and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()
    proc = run_kit(["report", str(bundle), "-o", str(tmp_path / "r.md")], tmp_path)
    assert proc.returncode == ExitCode.PARTIAL and not (tmp_path / "r.md").exists()
    proc = run_kit(
        ["report", str(bundle), "--allow-partial", "-o", str(tmp_path / "r.md")], tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert "PARTIAL bundle (run failed; STS12 failed)" in (tmp_path / "r.md").read_text()
    # the failed task without the manifest's partial marking: the records disagree
    path = _write(_rebuild(members, key, partial=True), tmp_path / "t.tar.gz")
    _expect(_verify(path, key), ExitCode.INCONSISTENT, "STS12 failed", "does not mark")
    _expect(_verify(path, key, "--allow-partial"), ExitCode.INCONSISTENT, "does not mark")


def test_layouts_come_through_the_protocol(signed: Path) -> None:
    """What mteb evaluates is asked of a ``TaskLayouts``; the failing line names its version."""
    from kit.signing.policy import AcceptUnsigned
    from kit.verify.checks import verify_members
    from kit.verify.tasklayout import StaticLayouts

    members = read_bundle_archive(signed)
    sts = {"eval_splits": ["test"], "main_score": "cosine_spearman", "type": "STS"}
    same = {
        "STSBenchmark": {**sts, "hf_subsets": ["default"]},
        "STS12": {**sts, "hf_subsets": ["default"]},
    }
    report, _ = verify_members(
        "b", members, signature=AcceptUnsigned(None), layouts=StaticLayouts("9.9.9", {"": same})
    )
    assert report.ok, report.first_failure()
    wider = {**same, "STS12": {**sts, "hf_subsets": ["default", "en"]}}
    report, tasks = verify_members(
        "b", members, signature=AcceptUnsigned(None), layouts=StaticLayouts("9.9.9", {"": wider})
    )
    bad = report.first_failure()
    assert tasks is None and bad.name == "consistency" and bad.code == ExitCode.INCONSISTENT
    assert bad.reason == (
        "STS12: split 'test' has subsets ['default'], mteb evaluates ['default', 'en'] "
        f"(mteb 9.9.9's definition; the bundle was made with mteb {MTEB_VERSION})"
    )
    report, _ = verify_members(
        "b", members, signature=AcceptUnsigned(None), layouts=StaticLayouts("9.9.9", {})
    )
    assert (
        "STSBenchmark: not a task of its task registry in mteb 9.9.9"
        in report.first_failure().reason
    )


# ---------------------------------------------------------------- random structural mutations

_HOSTILE_JSON = [
    b"[" * 100_000,
    b'{"a": 1, "a": 2}',
    b'{"x": NaN}',
    b'{"x": 1e999}',
    b'{"x": ' + b"9" * 5000 + b"}",
    b'{"x": "\xff\xfe"}',
    b"\xef\xbb\xbf{}",
    b"null",
    b"[]",
    b"",
]
_NAME_CHARS = st.sampled_from([*"abcXYZ09._-/ []", "\x1b", "\n", "\u202e", "é", "\x00"])


@pytest.fixture(scope="module")
def warm_layouts(layout_cache: Path) -> None:
    """mteb imported and the two tasks' layouts cached before the cases start."""
    from kit.verify.tasklayout import default_layouts

    layouts = default_layouts()
    assert layouts is not None
    assert set(layouts.lookup(["STSBenchmark", "STS12", "NoSuchTask"], None)) == {
        "STSBenchmark",
        "STS12",
    }


def _record_edits(run: dict, raw: dict, meta: dict) -> list:
    """Edits that make one record disagree with the others (none is neutral)."""
    return [
        lambda: run["resolved"].update(model="org/other"),
        lambda: run["resolved"].update(revision="0" * 40),
        lambda: run["model"].update(name="org/other"),
        lambda: run["tasks"][0].update(main_score=run["tasks"][0]["main_score"] + 1e-6),
        lambda: run["tasks"][1].update(status="failed"),
        lambda: run["tasks"][0].update(eval_splits=["validation"]),
        lambda: run["tasks"][0].update(type="Retrieval"),
        lambda: run["resolved"]["tasks"].append("STS13"),
        lambda: run["tasks"].append({**run["tasks"][0]}),
        lambda: run.update(status="interrupted"),
        lambda: run.update(results_dir=run["results_dir"] + "x"),
        lambda: raw["scores"].update(validation=raw["scores"]["test"]),
        lambda: raw["scores"]["test"].append({**raw["scores"]["test"][0], "hf_subset": "fr"}),
        lambda: meta.update(revision="1" * 40),
    ]


@settings(
    max_examples=60,
    deadline=None,  # timings belong in benchmarks/bundle_verify_speed.py, not in a test
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
@given(data=st.data())
def test_mutations_never_pass_never_crash(
    signed: Path, key: Path, warm_layouts: None, tmp_path: Path, data
) -> None:
    members = read_bundle_archive(signed)
    names = sorted(n for n in members if n not in (MANIFEST, SIGNATURE))
    kind = data.draw(st.sampled_from(["drop", "duplicate", "rename", "edit", "json", "name"]))
    neutral = False
    changed = dict(members)
    new_name = data.draw(
        st.one_of(
            st.sampled_from(
                [
                    "extra.json",
                    "results/org__other/rev/STS12.json",
                    f"{names[-1].rsplit('/', 1)[0]}/STS13.json",
                    f"{names[-1].rsplit('/', 1)[0]}/sub/STS12.json",
                    "shards/0/run.json",
                ]
            ),
            st.text(_NAME_CHARS, min_size=1, max_size=40),
        )
    )
    assume(new_name not in members)
    if kind == "drop":
        victim = data.draw(st.sampled_from(names))
        del changed[victim]
        neutral = victim.endswith(("/model_meta.json", "/run_settings.jsonl"))  # optional files
        changed = _relist(changed, key)
    elif kind in ("duplicate", "rename"):
        victim = data.draw(st.sampled_from(names))
        changed[new_name] = changed[victim] if kind == "duplicate" else changed.pop(victim)
        changed = _relist(changed, key)
    elif kind == "name":
        changed[new_name] = data.draw(st.binary(max_size=32))
        changed = _relist(changed, key)
    elif kind == "json":
        victim = data.draw(st.sampled_from(names))
        changed[victim] = data.draw(st.sampled_from(_HOSTILE_JSON))
        # an empty run_settings.jsonl says no more than a missing one (it is optional)
        neutral = victim.endswith("/run_settings.jsonl") and changed[victim] == b""
        changed = _relist(changed, key)
    else:
        run = json.loads(members["run.json"])
        raw_name = _result(members, run["tasks"][0]["name"])
        raw = json.loads(members[raw_name])
        meta_name = next(n for n in names if n.endswith("/model_meta.json"))
        meta = json.loads(members[meta_name])
        edits = _record_edits(run, raw, meta)
        data.draw(st.sampled_from(edits))()
        changed[meta_name] = json.dumps(meta).encode()
        changed[raw_name] = json.dumps(raw).encode()
        changed["run.json"] = json.dumps(run).encode()
        try:
            changed = _rebuild(changed, key)
        except (KitError, ValueError, KeyError):
            changed = _relist(changed, key)  # the kit's own builder refuses: digests only
    path = tmp_path / "m.tar.gz"
    try:
        write_deterministic_targz(changed, path)
    except (KitError, ValueError):
        assume(False)  # a name the archive writer itself refuses
    code, out, err = _verify(path, key)
    assert code != 1, (kind, err)
    assert neutral or code != 0, (kind, new_name, out[-2000:])
    assert len(err.strip().splitlines()) <= 1, err
