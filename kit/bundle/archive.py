"""Deterministic tar.gz writing and safe, in-memory reading of bundle archives.

Reading never extracts to disk and never follows a link: members are streamed into memory
under limits on count, size and compression ratio, so a hostile archive can only be refused.
"""

from __future__ import annotations

import gzip
import io
import re
import stat
import tarfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Self

from kit.errors import ExitCode, KitError
from kit.fsio import atomic_write_bytes

FIXED_MTIME = 946684800  # 2000-01-01T00:00:00Z, the mtime of every written member

_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # zlib: expect a gzip header and check its CRC and length
_IN_CHUNK = 1 << 16  # compressed bytes fed to zlib at a time
_OUT_CHUNK = 1 << 20  # at most this much decompressed output per zlib call
_RATIO_GRACE = 1 << 20  # output up to 1 MiB never trips the ratio check (tiny archives)
_FILE_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
_DRIVE = re.compile(r"[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class UnsafeArchive(KitError):
    """An archive that is unsafe, corrupt or over a limit; always exit code UNSAFE_ARCHIVE."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.UNSAFE_ARCHIVE)


@dataclass(frozen=True)
class Limits:
    """Bounds on what reading one archive may cost."""

    max_members: int = 10_000  # tar entries of any type, directories included
    max_member_bytes: int = 512 * 1024**2
    max_total_bytes: int = 2 * 1024**3  # of file contents, and of the whole decompressed tar
    max_ratio: float = 200.0  # decompressed bytes per byte of the archive file
    max_file_bytes: int = 2 * 1024**3  # of the (compressed) bundle file itself

    def __post_init__(self) -> None:
        if (
            min(self.max_members, self.max_member_bytes, self.max_total_bytes, self.max_file_bytes)
            < 1
        ):
            raise ValueError("archive limits must be positive")
        if not self.max_ratio > 0:
            raise ValueError("max_ratio must be positive")


def _name_problem(name: str) -> str | None:
    """Why ``name`` is not a safe, normalised relative POSIX path (None if it is)."""
    if not name:
        return "empty member name"
    if "\\" in name:
        return "backslash in member name"
    if _CONTROL.search(name):
        return "control character in member name"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "member name is not valid UTF-8"
    if name.startswith("/"):
        return "absolute member path"
    if _DRIVE.match(name):
        return "drive-letter member path"
    parts = name.split("/")
    if ".." in parts:
        return "'..' in member path"
    if "" in parts:
        return "empty segment in member path"
    if "." in parts:
        return "'.' segment in member path"
    return None


def _normalise(raw: str) -> str:
    """A member's name with one leading ``./`` run and one trailing ``/`` removed, checked."""
    name = raw
    if not name.startswith("/"):
        while name.startswith("./"):
            name = name[2:]
        if name == ".":
            name = ""
        if name.endswith("/"):
            name = name[:-1]
        if not name and raw:
            return ""  # the archive root ("./"): only a directory may be called that
    problem = _name_problem(name)
    if problem:
        raise UnsafeArchive(f"{problem}: {raw!r}")
    return name


def write_deterministic_targz(members: Mapping[str, bytes], dest: Path) -> None:
    """Write ``members`` (name -> content) as a tar.gz whose bytes depend on them alone.

    Files only, sorted by name, fixed metadata (mtime FIXED_MTIME, uid/gid 0, no owner
    names, mode 0644), PAX format, gzip level 9 with no name and mtime 0; ``dest`` is
    replaced atomically. Names must be normalised relative POSIX paths (else ValueError).
    """
    names = sorted(members)
    for name in names:
        problem = _name_problem(name)
        if problem:
            raise ValueError(f"{problem}: {name!r}")
    buf = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name in names:
            data = members[name]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = FIXED_MTIME
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    atomic_write_bytes(Path(dest), buf.getvalue())


class _GzipGuard(io.RawIOBase):
    """Decompress a (possibly multi-member) gzip stream, refusing a bomb as it expands."""

    def __init__(self, src: BinaryIO, compressed_size: int, limits: Limits) -> None:
        self._src = src
        self._limits = limits
        self._ratio_cap = max(limits.max_ratio * compressed_size, _RATIO_GRACE)
        self._dec = zlib.decompressobj(_GZIP_WBITS)
        self._input = b""  # compressed bytes read from src but not yet given to zlib
        self._pending = memoryview(b"")
        self._produced = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending and not self._done:
            self._step()
        n = min(len(b), len(self._pending))
        b[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _step(self) -> None:
        if self._dec.eof:
            self._next_member()
            return
        data = self._dec.unconsumed_tail or self._take_input()
        try:
            # at the end of input, flush() yields what zlib still holds (at most a few bytes)
            out = self._dec.decompress(data, _OUT_CHUNK) if data else self._dec.flush()
        except zlib.error as e:
            raise UnsafeArchive(f"corrupt archive: gzip data error ({e})") from None
        if not data and not self._dec.eof and not out:
            raise UnsafeArchive("truncated archive (gzip stream ends early)")
        self._produced += len(out)
        if self._produced > self._limits.max_total_bytes:
            raise UnsafeArchive("archive expands beyond the total size limit")
        if self._produced > self._ratio_cap:
            raise UnsafeArchive(
                f"compression ratio above {self._limits.max_ratio:g}:1 (a decompression bomb?)"
            )
        self._pending = memoryview(out)

    def _take_input(self) -> bytes:
        data, self._input = self._input, b""
        return data or self._src.read(_IN_CHUNK)

    def _next_member(self) -> None:
        """After one gzip member: skip zero padding; anything else must be another member."""
        rest = self._dec.unused_data
        while not (rest := rest.lstrip(b"\0")):
            rest = self._src.read(_IN_CHUNK)
            if not rest:
                self._done = True
                return
        self._input = rest
        self._dec = zlib.decompressobj(_GZIP_WBITS)


_EXT_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)
_LONG_TYPES = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)
MAX_EXT_HEADER_BYTES = 16 * 1024  # one pax extended header or GNU long name
MAX_EXT_HEADERS = 10_000  # pax and GNU long-name headers in one archive
_LONG_DIGITS = re.compile(rb"[0-9]{33}")  # CVE-2024-6232: tarfile < 3.13 is quadratic on them
_PAX_LENGTH = re.compile(rb"([1-9][0-9]{0,19}) ")


def _check_pax(buf: bytes) -> None:
    """Refuse a pax header tarfile would parse slowly or loosely, before it sees the bytes.

    Every record must be ``"<len> <key>=<value>\\n"`` with ``len`` its exact length, and no
    run of more than 32 digits may occur anywhere (tarfile before 3.13 backtracks over them
    in quadratic time), so what the standard library parses next costs linear time.
    """
    if _LONG_DIGITS.search(buf):
        raise UnsafeArchive("pax header with a number longer than 32 digits")
    pos = 0
    while pos < len(buf):
        if buf[pos] == 0 and not buf[pos:].strip(b"\0"):
            return  # zero padding after the last record
        m = _PAX_LENGTH.match(buf, pos)
        length = int(m.group(1)) if m else 0
        record = buf[pos : pos + length]
        if not m or len(record) != length or not record.endswith(b"\n") or b"=" not in record:
            raise UnsafeArchive("corrupt archive: malformed pax header record")
        pos += length


class _Replay:
    """tarfile's stream, with the extended header's bytes (read and checked) given back once."""

    def __init__(self, buf: bytes, inner: object) -> None:
        self._buf: bytes | None = buf
        self._inner = inner

    def read(self, size: int = -1) -> bytes:
        if self._buf is not None:
            if size != len(self._buf):
                raise UnsafeArchive("corrupt archive: unexpected pax header read")
            buf, self._buf = self._buf, None
            return buf
        return self._inner.read(size)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


class _StrictTarInfo(tarfile.TarInfo):
    """Turn the header errors tarfile treats as a quiet end of archive into refusals.

    Extended headers (pax, GNU long names) are bounded in size and number, and pax records
    checked, before the standard library parses them (CVE-2024-6232 and kin).
    """

    def _proc_member(self, tarfile_: tarfile.TarFile) -> Self:
        if self.type not in _EXT_TYPES and self.type not in _LONG_TYPES:
            return super()._proc_member(tarfile_)  # type: ignore[misc]
        seen = getattr(tarfile_, "_kit_ext_headers", 0) + 1
        tarfile_._kit_ext_headers = seen  # type: ignore[attr-defined]
        if seen > MAX_EXT_HEADERS:
            raise UnsafeArchive(f"more than {MAX_EXT_HEADERS} extended (pax) headers")
        if not 0 <= self.size <= MAX_EXT_HEADER_BYTES:
            raise UnsafeArchive(f"extended (pax) header over {MAX_EXT_HEADER_BYTES} bytes")
        if self.type in _LONG_TYPES:
            return super()._proc_member(tarfile_)  # type: ignore[misc]
        stream = tarfile_.fileobj
        buf = stream.read(self._block(self.size))  # type: ignore[attr-defined]
        if len(buf) != self._block(self.size):  # type: ignore[attr-defined]
            raise UnsafeArchive("truncated archive (tar stream ends early)")
        _check_pax(buf[: self.size])
        tarfile_.fileobj = _Replay(buf, stream)  # type: ignore[assignment]
        try:
            return super()._proc_member(tarfile_)  # type: ignore[misc]
        finally:
            tarfile_.fileobj = stream

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> Self:
        try:
            return super().fromtarfile(tarfile_)
        except tarfile.EOFHeaderError:  # type: ignore[attr-defined]  # not in typeshed
            raise  # a zero block: the end-of-archive marker, checked after the loop
        except (tarfile.EmptyHeaderError, tarfile.TruncatedHeaderError):  # type: ignore[attr-defined]
            if tarfile_.offset == 0:
                raise UnsafeArchive("not a tar archive (no tar header)") from None
            raise UnsafeArchive("truncated archive (tar stream ends early)") from None
        except tarfile.HeaderError as e:
            if tarfile_.offset == 0:
                raise UnsafeArchive(f"not a tar archive ({e})") from None
            raise UnsafeArchive(f"corrupt archive: bad tar header ({e})") from None


def read_bundle_file(path: Path, limits: Limits = Limits()) -> bytes:
    """The bytes of the bundle file at ``path``: the one place a bundle file is read.

    Callers hash and parse these bytes, so what is checked is what is used, however the file
    changes afterwards. Refuses (UnsafeArchive) a missing, special, empty, oversized or
    non-gzip file; a missing one is NOT_FOUND.
    """
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KitError(f"{path} not found", ExitCode.NOT_FOUND) from None
    except OSError as e:
        raise UnsafeArchive(f"cannot read {path}: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeArchive(f"{path} is not a regular file")
    if st.st_size > limits.max_file_bytes:
        raise UnsafeArchive(f"{path} is larger than {limits.max_file_bytes} bytes")
    try:
        with open(path, "rb") as f:
            data = f.read(st.st_size + 1)  # the file may grow while read: bounded still
    except OSError as e:
        raise UnsafeArchive(f"cannot read {path}: {e.strerror or e}") from None
    if len(data) > limits.max_file_bytes:
        raise UnsafeArchive(f"{path} is larger than {limits.max_file_bytes} bytes")
    if not data:
        raise UnsafeArchive(f"{path} is empty")
    if data[:2] != _GZIP_MAGIC:
        raise UnsafeArchive(f"{path} is not a gzip archive")
    return data


def parse_bundle_archive(data: bytes, limits: Limits = Limits()) -> dict[str, bytes]:
    """A bundle's regular files (name -> bytes) from the bytes of its gzip'd tar.

    Nothing is written to disk. Directory entries are skipped and a leading ``./`` is
    dropped from names; every other problem raises UnsafeArchive with a one-line reason.
    """
    if data[:2] != _GZIP_MAGIC:
        raise UnsafeArchive("not a gzip archive")
    try:
        return _read_members(io.BytesIO(data), len(data), limits)
    except UnsafeArchive:
        raise
    except (EOFError, tarfile.ReadError) as e:
        if isinstance(e, EOFError) or "unexpected end of data" in str(e):
            raise UnsafeArchive("truncated archive (tar stream ends early)") from None
        raise UnsafeArchive(f"corrupt archive: {_first_line(e)}") from None
    except Exception as e:  # garbage input must never escape as another exception type
        raise UnsafeArchive(f"corrupt archive: {_first_line(e)}") from None


def read_bundle_archive(path: Path, limits: Limits = Limits()) -> dict[str, bytes]:
    """Read the bundle file at ``path`` and return its members (see parse_bundle_archive)."""
    return parse_bundle_archive(read_bundle_file(path, limits), limits)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


def _read_members(src: BinaryIO, size: int, limits: Limits) -> dict[str, bytes]:
    stream = io.BufferedReader(_GzipGuard(src, size, limits), buffer_size=_IN_CHUNK)
    members: dict[str, bytes] = {}
    folders: set[str] = set()  # every parent folder of a file read so far
    total = count = 0
    with tarfile.open(fileobj=stream, mode="r|", tarinfo=_StrictTarInfo) as tar:
        for info in tar:
            count += 1
            if count > limits.max_members:
                raise UnsafeArchive(f"more than {limits.max_members} members")
            name = _normalise(info.name)
            if info.issym() or info.islnk():
                raise UnsafeArchive(f"link member {info.name!r} (links are refused)")
            if info.isdir():
                continue
            if not name:
                raise UnsafeArchive(f"file member with an empty name: {info.name!r}")
            _check_file_member(info, name)
            if name in members:
                raise UnsafeArchive(f"duplicate member {name!r}")
            parents = ["/".join(name.split("/")[:i]) for i in range(1, name.count("/") + 1)]
            if name in folders or any(p in members for p in parents):
                raise UnsafeArchive(f"member {name!r} is both a file and a folder")
            if info.size > limits.max_member_bytes:
                raise UnsafeArchive(f"member {name!r} over the size limit")
            total += info.size
            if total > limits.max_total_bytes:
                raise UnsafeArchive("archive over the total size limit")
            f = tar.extractfile(info)
            data = f.read() if f is not None else b""
            if len(data) != info.size:
                raise UnsafeArchive(f"truncated archive (member {name!r} is cut short)")
            members[name] = data
            folders.update(parents)
        _check_end_of_archive(tar)
    while stream.read(_IN_CHUNK):  # the gzip trailers (CRC, length) must check out
        pass
    if not members:
        raise UnsafeArchive("archive holds no files")
    return members


def _check_file_member(info: tarfile.TarInfo, name: str) -> None:
    if info.type in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        raise UnsafeArchive(f"device member {name!r}")
    if info.type == tarfile.FIFOTYPE:
        raise UnsafeArchive(f"fifo member {name!r}")
    if info.type == tarfile.GNUTYPE_SPARSE or info.sparse is not None:
        raise UnsafeArchive(f"sparse member {name!r}")
    if info.type not in _FILE_TYPES:
        raise UnsafeArchive(f"unsupported member type {info.type!r} for {name!r}")
    if info.size < 0:
        raise UnsafeArchive(f"corrupt archive: negative size for {name!r}")


def _check_end_of_archive(tar: tarfile.TarFile) -> None:
    """The tar must end with two zero blocks and nothing but zero padding after them."""
    seen = 0
    while chunk := tar.fileobj.read(_IN_CHUNK):  # the tar stream past the first zero block
        if chunk.count(0) != len(chunk):
            raise UnsafeArchive("corrupt archive: data after the end of the tar archive")
        seen += len(chunk)
    if seen < tarfile.BLOCKSIZE:
        raise UnsafeArchive("truncated archive (tar end-of-archive marker incomplete)")
