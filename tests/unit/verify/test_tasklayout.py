"""The mteb task-layout cache: filled only for tasks asked and missing, per mteb version."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from kit.verify.tasklayout import (
    MtebLayouts,
    StaticLayouts,
    cache_dir,
    dist_info_version,
    installed_mteb_version,
)

STS = {
    "eval_splits": ["test"],
    "hf_subsets": ["default"],
    "main_score": "cosine_spearman",
    "type": "STS",
}


class FakeMteb:
    """Stands in for mteb at the seam: records what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[list[str], str | None]] = []

    def __call__(self, names: list[str], benchmark: str | None) -> dict[str, dict]:
        self.asked.append((list(names), benchmark))
        return {n: {**STS, "type": f"T-{benchmark}"} for n in names if n != "Unknown"}


def test_fills_only_missing_tasks_and_reuses_the_file(tmp_path: Path) -> None:
    fake = FakeMteb()
    layouts = MtebLayouts("2.0.0", tmp_path, fake)
    assert set(layouts.lookup(["A", "B", "Unknown"], None)) == {"A", "B"}
    assert layouts.lookup(["A", "C"], None)["C"]["type"] == "T-None"
    assert fake.asked == [(["A", "B", "Unknown"], None), (["C"], None)]
    assert layouts.path == tmp_path / "mteb-tasks-2.0.0.json"
    again = FakeMteb()
    fresh = MtebLayouts("2.0.0", tmp_path, again)
    assert fresh.lookup(["A", "B", "C"], None)["B"] == {**STS, "type": "T-None"}
    assert again.asked == []  # all from the file
    fresh.lookup(["A"], "MTEB(eng, v2)")  # a benchmark's layout is its own
    assert again.asked == [(["A"], "MTEB(eng, v2)")]
    other = FakeMteb()
    MtebLayouts("2.0.1", tmp_path, other).lookup(["A"], None)  # another mteb: its own file
    assert other.asked == [(["A"], None)]


@pytest.mark.parametrize("content", [b"not json", b"[]", b'{"format": "x"}', b"\xff\xfe"])
def test_unreadable_cache_is_refilled(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "mteb-tasks-2.0.0.json").write_bytes(content)
    fake = FakeMteb()
    assert MtebLayouts("2.0.0", tmp_path, fake).lookup(["A"], None)["A"]["eval_splits"] == ["test"]
    assert fake.asked == [(["A"], None)]
    data = json.loads((tmp_path / "mteb-tasks-2.0.0.json").read_text())
    assert data["mteb_version"] == "2.0.0" and "A" in data["layouts"][""]


def test_invalid_entries_in_cache_are_asked_again(tmp_path: Path) -> None:
    body = {"format": "repro-kit/mteb-tasks", "mteb_version": "1", "layouts": {"": {"A": {"x": 1}}}}
    (tmp_path / "mteb-tasks-1.json").write_text(json.dumps(body))
    fake = FakeMteb()
    MtebLayouts("1", tmp_path, fake).lookup(["A"], None)
    assert fake.asked == [(["A"], None)]


def test_read_only_cache_folder_still_answers(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert "A" in MtebLayouts("1", ro / "sub", FakeMteb()).lookup(["A"], None)
    finally:
        ro.chmod(0o700)


def test_cache_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "repro-kit"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # not absolute: ignored, as XDG says
    assert cache_dir() == Path.home() / ".cache" / "repro-kit"


def test_static_layouts() -> None:
    fixed = StaticLayouts("9", {"": {"A": STS}})
    assert fixed.lookup(["A", "B"], None) == {"A": STS} and fixed.lookup(["A"], "X") == {}


def _dist(folder: Path, name: str, version: str, kind: str = "dist-info") -> None:
    meta = folder / f"{name}-{version}.{kind}"
    meta.mkdir(parents=True)
    text = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nVersion: not this\n"
    (meta / ("METADATA" if kind == "dist-info" else "PKG-INFO")).write_text(text)


def test_mteb_version_read_as_importlib_metadata_reads_it() -> None:
    from importlib import metadata

    assert installed_mteb_version() == metadata.version("mteb")
    assert dist_info_version("mteb") == metadata.version("mteb")  # without importlib.metadata


def test_dist_info_version_first_on_the_path_or_undecided(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from importlib import metadata

    first, second, eggs, twice = (tmp_path / d for d in ("a", "b", "eggs", "twice"))
    _dist(first, "Fake_Pkg", "1.0")
    _dist(second, "Fake.Pkg", "2.0")
    _dist(eggs, "fake_pkg", "3.0", "egg-info")
    _dist(twice, "fake_pkg", "4.0")
    _dist(twice, "fake.pkg", "5.0")
    (tmp_path / "lib.zip").write_bytes(b"PK")
    for path, want in [
        ([first, second], "1.0"),
        ([tmp_path / "none", second, first], "2.0"),
        ([], None),
    ]:
        monkeypatch.setattr(sys, "path", [str(p) for p in path])
        assert dist_info_version("fake_pkg") == want
        if want is not None:
            assert metadata.version("fake_pkg") == want  # what importlib.metadata says too
    for undecided in ([eggs, first], [twice], [tmp_path / "lib.zip", first]):
        monkeypatch.setattr(sys, "path", [str(p) for p in undecided])
        assert dist_info_version("fake_pkg") is None  # left to importlib.metadata
    monkeypatch.setattr(sys, "path", [str(eggs)])
    assert installed_mteb_version() is None  # importlib.metadata finds no mteb either
