"""kit.archive: deterministic writing, round trips, a tamper matrix and random corruption."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kit.bundle.archive import (
    FIXED_MTIME,
    Limits,
    UnsafeArchive,
    read_bundle_archive,
    write_deterministic_targz,
)
from kit.errors import ExitCode

MEMBERS = {
    "manifest.json": b'{"format": 1}\n',
    "run.json": b"{}\n",
    "results/org__model/rev/STS12.json": b'{"scores": [0.5]}\n',
    "results/org__model/rev/model_meta.json": b"",
    "results/org__model/rev/" + "long_" * 30 + ".json": b"x" * 3000,  # > 100 chars: PAX path
    "résumé/données.bin": bytes(range(256)) * 4,  # non-ASCII name: PAX path
}


# ---------------------------------------------------------------- helpers


def _file(name: str, data: bytes = b"data") -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


def _tar_bytes(
    entries: list[tuple[tarfile.TarInfo, bytes | None]], fmt: int = tarfile.PAX_FORMAT
) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _hand_targz(
    path: Path, entries: list[tuple[tarfile.TarInfo, bytes | None]], fmt: int = tarfile.PAX_FORMAT
) -> Path:
    path.write_bytes(gzip.compress(_tar_bytes(entries, fmt)))
    return path


def _refused(path: Path, limits: Limits | None = None) -> str:
    """Read ``path``, expect UnsafeArchive with the right code and a one-line message."""
    with pytest.raises(UnsafeArchive) as info:
        read_bundle_archive(path, limits or Limits())
    err = info.value
    assert err.code == ExitCode.UNSAFE_ARCHIVE
    assert err.message and "\n" not in err.message and "\r" not in err.message
    assert err.message == err.message.strip() and len(err.message) < 400
    return err.message


# ---------------------------------------------------------------- writing


def test_same_members_same_bytes(tmp_path: Path) -> None:
    first, second = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    write_deterministic_targz(MEMBERS, first)
    write_deterministic_targz(dict(reversed(list(MEMBERS.items()))), second)
    assert first.read_bytes() == second.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar.gz", "b.tar.gz"]  # no temp left


def test_gzip_header_is_fixed(tmp_path: Path) -> None:
    dest = tmp_path / "b.tar.gz"
    write_deterministic_targz(MEMBERS, dest)
    raw = dest.read_bytes()
    assert raw[:3] == b"\x1f\x8b\x08"  # gzip, deflate
    assert raw[3] == 0  # flags: no file name, no comment, no extra field
    assert raw[4:8] == b"\0\0\0\0"  # mtime 0
    assert raw[8] == 2  # XFL: compresslevel 9


def test_tar_metadata_is_normalised(tmp_path: Path) -> None:
    dest = tmp_path / "b.tar.gz"
    write_deterministic_targz(MEMBERS, dest)
    with tarfile.open(dest, "r:gz") as tar:
        infos = tar.getmembers()
        assert [i.name for i in infos] == sorted(MEMBERS)
        for info in infos:
            assert info.type == tarfile.REGTYPE
            assert (info.mtime, info.uid, info.gid) == (FIXED_MTIME, 0, 0)
            assert (info.uname, info.gname, info.mode) == ("", "", 0o644)
            assert info.size == len(MEMBERS[info.name])


def test_round_trip(tmp_path: Path) -> None:
    dest = tmp_path / "b.tar.gz"
    write_deterministic_targz(MEMBERS, dest)
    assert read_bundle_archive(dest) == MEMBERS


def test_overwrite_is_atomic_and_bad_names_write_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "b.tar.gz"
    write_deterministic_targz({"a.json": b"1"}, dest)
    write_deterministic_targz({"b.json": b"2"}, dest)
    assert read_bundle_archive(dest) == {"b.json": b"2"}
    with pytest.raises(ValueError):
        write_deterministic_targz({"ok.json": b"1", "../evil": b"2"}, dest)
    assert read_bundle_archive(dest) == {"b.json": b"2"}
    assert [p.name for p in tmp_path.iterdir()] == ["b.tar.gz"]


@pytest.mark.parametrize(
    "name",
    ["", "/etc/passwd", "../evil", "a/../../evil", "a/..", "a//b", "a/", "./a", "a/./b", "a\\b",
     "C:/evil", "a\nb", "nul\x00"],
)  # fmt: skip
def test_writer_rejects_unsafe_names(tmp_path: Path, name: str) -> None:
    dest = tmp_path / "b.tar.gz"
    with pytest.raises(ValueError):
        write_deterministic_targz({name: b"x"}, dest)
    assert not dest.exists()


# ---------------------------------------------------------------- accepted variants


def test_reads_dot_prefix_and_directory_entries(tmp_path: Path) -> None:
    """What `tar -C run -czf b.tar.gz .` makes: a "./" root, "./" prefixes, folder entries."""
    folder = tarfile.TarInfo("./results/")
    folder.type = tarfile.DIRTYPE
    root = tarfile.TarInfo("./")
    root.type = tarfile.DIRTYPE
    path = _hand_targz(
        tmp_path / "t.tar.gz",
        [(root, None), (folder, None), _file("./results/a.json", b"1"), _file("./run.json", b"2")],
        tarfile.GNU_FORMAT,
    )
    assert read_bundle_archive(path) == {"results/a.json": b"1", "run.json": b"2"}


def test_concatenated_gzip_members_and_zero_padding(tmp_path: Path) -> None:
    tar = _tar_bytes([_file("a.json", b"1" * 5000)])
    path = tmp_path / "t.tar.gz"
    path.write_bytes(gzip.compress(tar[:2048]) + gzip.compress(tar[2048:]) + b"\0" * 1000)
    assert read_bundle_archive(path) == {"a.json": b"1" * 5000}


def test_many_members_read_back(tmp_path: Path) -> None:
    """10,000 members (the default limit) read back (its time: benchmarks/verify_worst_case.py)."""
    members = {f"results/m{i % 50}/task{i}.json": b"{}" for i in range(10_000)}
    dest = tmp_path / "many.tar.gz"
    write_deterministic_targz(members, dest)
    assert read_bundle_archive(dest) == members


# ---------------------------------------------------------------- tamper matrix

Build = Callable[[Path, str], object]  # (archive path, unique "evil" marker) -> anything


def _entries(*specs: Callable[[str], tuple[tarfile.TarInfo, bytes | None]], gnu: bool = False):
    fmt = tarfile.GNU_FORMAT if gnu else tarfile.PAX_FORMAT
    return lambda p, evil: _hand_targz(p, [spec(evil) for spec in specs], fmt)


def _f(template: str, data: bytes = b"data"):
    return lambda evil: _file(template.format(evil=evil), data)


def _s(template: str, kind: bytes, linkname: str = ""):
    return lambda evil: _special(template.format(evil=evil), kind, linkname)


def _pax_path(template: str):
    def spec(evil: str) -> tuple[tarfile.TarInfo, bytes]:
        info, data = _file("innocent.json")
        info.pax_headers = {"path": template.format(evil=evil)}
        return info, data

    return spec


def _bytes(make: Callable[[], bytes]) -> Build:
    return lambda p, evil: p.write_bytes(make())


def _gz(make: Callable[[], bytes]) -> Build:
    return lambda p, evil: p.write_bytes(gzip.compress(make()))


def _valid_tar() -> bytes:
    return _tar_bytes([_file(n, d) for n, d in sorted(MEMBERS.items())])


def _valid_targz() -> bytes:
    return gzip.compress(_valid_tar())


def _two_files() -> bytes:
    return _tar_bytes([_file("a.json", b"1"), _file("b.json", b"2")])


TAMPERS: dict[str, tuple[Build, str]] = {
    # paths
    "absolute": (_entries(_f("/tmp/{evil}")), "absolute"),
    "dotdot": (_entries(_f("../{evil}")), "'..'"),
    "dotdot-deep": (_entries(_f("a/../../{evil}")), "'..'"),
    "dotdot-folder": (_entries(_s("../{evil}/", tarfile.DIRTYPE), _f("ok")), "'..'"),
    "backslash": (_entries(_f("..\\{evil}")), "backslash"),
    "drive-letter": (_entries(_f("C:/{evil}")), "drive"),
    "empty-segment": (_entries(_f("a//{evil}")), "empty segment"),
    "dot-segment": (_entries(_f("a/./{evil}")), "'.' segment"),
    "control-char": (_entries(_f("a\n{evil}")), "control character"),
    "pax-path-dotdot": (_entries(_pax_path("../{evil}")), "'..'"),
    "pax-path-absolute": (_entries(_pax_path("/tmp/{evil}")), "absolute"),
    "gnu-longname-dotdot": (_entries(_f("x" * 120 + "/../../../{evil}"), gnu=True), "'..'"),
    # member types
    "symlink": (_entries(_s("{evil}", tarfile.SYMTYPE, "/etc/passwd")), "link"),
    "symlink-then-write": (_entries(_s("d", tarfile.SYMTYPE, "/tmp"), _f("d/{evil}")), "link"),
    "hardlink": (_entries(_s("{evil}", tarfile.LNKTYPE, "/etc/passwd")), "link"),
    "fifo": (_entries(_s("{evil}", tarfile.FIFOTYPE)), "fifo"),
    "char-device": (_entries(_s("{evil}", tarfile.CHRTYPE)), "device"),
    "block-device": (_entries(_s("{evil}", tarfile.BLKTYPE)), "device"),
    "gnu-sparse": (_entries(_s("{evil}", tarfile.GNUTYPE_SPARSE)), "sparse"),
    # duplicates and clashes
    "duplicate": (_entries(_f("x", b"1"), _f("x", b"2")), "duplicate"),
    "duplicate-dot-slash": (_entries(_f("x", b"1"), _f("./x", b"2")), "duplicate"),
    "duplicate-trailing-slash": (_entries(_f("x", b"1"), _f("x/", b"2")), "duplicate"),
    "file-then-folder": (_entries(_f("x", b"1"), _f("x/y", b"2")), "file and a folder"),
    "folder-then-file": (_entries(_f("x/y", b"1"), _f("x", b"2")), "file and a folder"),
    "only-folders": (_entries(_s("d/", tarfile.DIRTYPE)), "no files"),
    # truncation and corruption
    "truncated-half": (_bytes(lambda: _valid_targz()[: len(_valid_targz()) // 2]), "truncated"),
    "truncated-last-100": (_bytes(lambda: _valid_targz()[:-100]), "truncated"),
    "truncated-trailer": (_bytes(lambda: _valid_targz()[:-4]), "truncated"),
    "tar-cut-in-header": (_gz(lambda: _valid_tar()[:700]), "truncated"),
    "tar-cut-at-member": (_gz(lambda: _two_files()[:1024]), "truncated"),
    "tar-no-end-marker": (_gz(lambda: _two_files()[:2048]), "truncated"),
    "tar-one-zero-block": (_gz(lambda: _two_files()[:2560]), "truncated"),
    "tar-garbage-header": (
        _gz(lambda: _two_files()[:1024] + b"\x01" * 512 + _two_files()[1536:]),
        "bad tar header",
    ),
    "data-after-tar": (_gz(lambda: _two_files() + b"hidden"), "after the end"),
    "garbage-after-gzip": (_bytes(lambda: _valid_targz() + b"junk"), "corrupt"),
    "not-gzip": (_bytes(lambda: os.urandom(4096)), "not a gzip"),
    "zip-file": (_bytes(lambda: b"PK\x03\x04" + os.urandom(200)), "not a gzip"),
    "gzip-magic-then-garbage": (_bytes(lambda: b"\x1f\x8b" + os.urandom(200)), "corrupt"),
    "gzip-of-text": (_gz(lambda: b"just some text, not a tar archive\n" * 40), "not a tar"),
    "gzip-of-nothing": (_gz(lambda: b""), "not a tar"),
    "empty": (_bytes(lambda: b""), "empty"),
    "folder": (lambda p, evil: p.mkdir(), "not a regular file"),
}


@pytest.mark.parametrize("case", sorted(TAMPERS))
def test_tamper_matrix(tmp_path: Path, case: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    evil = f"evil-{uuid.uuid4().hex}"
    build, expected = TAMPERS[case]
    path = work / "t.tar.gz"
    build(path, evil)
    before = sorted(work.rglob("*"))
    message = _refused(path)
    assert expected.lower() in message.lower(), message
    assert sorted(work.rglob("*")) == before
    _assert_nothing_named(evil, tmp_path)


def _assert_nothing_named(evil: str, tmp_path: Path) -> None:
    for place in (Path("/tmp"), tmp_path, tmp_path.parent, tmp_path.parent.parent, Path.cwd()):
        assert not list(place.glob(f"*{evil}*")), place
    assert not list(tmp_path.rglob(f"*{evil}*"))


# ---------------------------------------------------------------- limits


def test_too_many_members(tmp_path: Path) -> None:
    path = tmp_path / "t.tar.gz"
    write_deterministic_targz({f"f{i}": b"" for i in range(6)}, path)
    assert len(read_bundle_archive(path, Limits(max_members=6))) == 6
    assert "more than 5 members" in _refused(path, Limits(max_members=5))


def test_folders_count_as_members(tmp_path: Path) -> None:
    folders = [_special(f"d{i}/", tarfile.DIRTYPE) for i in range(10)]
    path = _hand_targz(tmp_path / "t.tar.gz", [*folders, _file("a")])
    assert "more than" in _refused(path, Limits(max_members=10))


def test_member_over_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "t.tar.gz"
    write_deterministic_targz({"small": b"x" * 100, "big": os.urandom(5000)}, path)
    assert "'big' over the size limit" in _refused(path, Limits(max_member_bytes=4999))
    assert len(read_bundle_archive(path, Limits(max_member_bytes=5000))) == 2


def test_total_over_limit(tmp_path: Path) -> None:
    path = tmp_path / "t.tar.gz"
    write_deterministic_targz({f"f{i}": os.urandom(3000) for i in range(4)}, path)
    assert "total size limit" in _refused(path, Limits(max_total_bytes=10_000))


class _Zeros(io.RawIOBase):
    """An endless source of zero bytes (a bomb is built without holding it in memory)."""

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        b[:] = bytes(len(b))
        return len(b)


def _write_bomb(path: Path, where: str, size: int = 50_000_000) -> None:
    """A tar.gz hiding ``size`` zero bytes in a file, after the end marker or in a PAX header."""
    with gzip.open(path, "wb", compresslevel=9) as gz:
        if where == "after-end":
            gz.write(_tar_bytes([_file("manifest.json", b"{}")]))
            zeros = io.BufferedReader(_Zeros())
            for _ in range(size // (1 << 20)):
                gz.write(zeros.read(1 << 20))
            return
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            info = tarfile.TarInfo("manifest.json")
            info.size = size
            if where == "pax-header":
                info.type = tarfile.XHDTYPE
            tar.addfile(info, io.BufferedReader(_Zeros()))


@pytest.mark.parametrize("where", ["member", "after-end", "pax-header"])
def test_bomb_refused_by_ratio_early(tmp_path: Path, where: str) -> None:
    """50 MB of zeros in a ~50 KB file: refused at the default 200:1 without inflating it all."""
    path = tmp_path / "bomb.tar.gz"
    _write_bomb(path, where)
    assert path.stat().st_size < 100_000  # ~1000:1
    tracemalloc.start()
    try:
        message = _refused(path, Limits(max_ratio=200))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if where == "pax-header":  # now refused before reading it: over the pax header bound
        assert "extended (pax) header over" in message
    else:
        assert "compression ratio above 200:1" in message
    assert peak < 25_000_000, f"peak {peak} bytes: the bomb was inflated too far"


def test_limits_validate() -> None:
    with pytest.raises(ValueError):
        Limits(max_members=0)
    with pytest.raises(ValueError):
        Limits(max_ratio=0)
    with pytest.raises(AttributeError):
        Limits().max_members = 1  # type: ignore[misc]


# ---------------------------------------------------------------- random corruption


def _mutate(raw: bytes, data: st.DataObject) -> bytes:
    blob = bytearray(raw)
    for _ in range(data.draw(st.integers(0, 3), label="flips")):
        at = data.draw(st.integers(0, len(blob) - 1), label="at")
        blob[at] ^= data.draw(st.integers(1, 255), label="xor")
    if data.draw(st.booleans(), label="truncate"):
        blob = blob[: data.draw(st.integers(0, len(blob)), label="cut")]
    return bytes(blob)


def _accept_or_refuse(path: Path) -> None:
    try:
        members = read_bundle_archive(path)
    except UnsafeArchive as e:
        assert e.code == ExitCode.UNSAFE_ARCHIVE
        assert e.message and "\n" not in e.message
        return
    assert isinstance(members, dict) and members
    for name, content in members.items():
        assert isinstance(content, bytes)
        assert name and not name.startswith("/") and ".." not in name.split("/")
        assert "\\" not in name and "" not in name.split("/")


_FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@_FUZZ
@given(data=st.data())
def test_corrupted_archive_is_read_or_refused(tmp_path: Path, data: st.DataObject) -> None:
    """Flips and cuts in the compressed file: mostly gzip-level damage."""
    path = tmp_path / "fuzz.tar.gz"
    path.write_bytes(_mutate(_VALID_TARGZ, data))
    _accept_or_refuse(path)


@_FUZZ
@given(data=st.data())
def test_corrupted_tar_is_read_or_refused(tmp_path: Path, data: st.DataObject) -> None:
    """Flips and cuts in the tar itself, re-gzipped so they reach the tar parser."""
    path = tmp_path / "fuzz.tar.gz"
    path.write_bytes(gzip.compress(_mutate(_VALID_TAR, data), compresslevel=1))
    _accept_or_refuse(path)


_VALID_TAR = _valid_tar()
_VALID_TARGZ = gzip.compress(_VALID_TAR)
