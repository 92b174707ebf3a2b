"""Deterministic tar.gz writing and safe, in-memory reading of bundle archives.

Reading never extracts to disk and never follows a link: members are streamed into memory
under limits on count, size and compression ratio, so a hostile archive can only be refused.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from kit.errors import ExitCode, KitError
from kit.fsio import atomic_write_bytes

FIXED_MTIME = 946684800  # 2000-01-01T00:00:00Z


class UnsafeArchive(KitError):
    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.UNSAFE_ARCHIVE)


@dataclass(frozen=True)
class Limits:
    max_members: int = 10_000
    max_member_bytes: int = 512 * 1024**2
    max_total_bytes: int = 2 * 1024**3
    max_ratio: float = 200.0


def _check_name(name: str) -> str:
    """Normalise a member name; refuse anything that could land outside a folder."""
    if not name or "\\" in name or "\x00" in name:
        raise UnsafeArchive(f"unsafe member name {name!r}")
    if name.startswith("/"):
        raise UnsafeArchive(f"absolute member path {name!r}")
    while name.startswith("./"):
        name = name[2:]
    name = name.rstrip("/")
    parts = PurePosixPath(name).parts
    if not parts or any(p in ("..", "") for p in parts) or any(p == "." for p in parts):
        raise UnsafeArchive(f"member path escapes the bundle: {name!r}")
    return "/".join(parts)


def write_deterministic_targz(members: Mapping[str, bytes], dest: Path) -> None:
    """Same members, same bytes: sorted entries, fixed metadata, no gzip timestamp."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(members):
            try:
                clean = _check_name(name)
            except UnsafeArchive as e:
                raise ValueError(e.message) from None
            if clean != name:
                raise ValueError(f"member name not normalised: {name!r}")
            data = members[name]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = FIXED_MTIME
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(buf.getvalue())
    atomic_write_bytes(Path(dest), out.getvalue())


class _RatioGuard(io.RawIOBase):
    """A decompressing reader that stops once output outgrows the compressed input."""

    def __init__(self, raw: bytes, limits: Limits) -> None:
        self._raw = raw
        self._size = max(len(raw), 1)
        self._limits = limits
        self._dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._pos = 0
        self._out = 0
        self._pending = b""
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        while not self._pending and not self._eof:
            if self._dec.eof:
                rest = self._dec.unused_data
                if rest.strip(b"\x00"):
                    # another gzip member follows (concatenated gzip): keep going
                    self._dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    self._raw = rest + self._raw[self._pos :]
                    self._pos = 0
                    continue
                self._eof = True
                break
            if self._pos >= len(self._raw):
                raise UnsafeArchive("truncated archive (gzip stream ends early)")
            chunk = self._raw[self._pos : self._pos + 65536]
            self._pos += len(chunk)
            try:
                self._pending = self._dec.decompress(chunk, 1 << 20)
                while self._dec.unconsumed_tail and len(self._pending) < (1 << 20):
                    self._pending += self._dec.decompress(self._dec.unconsumed_tail, 1 << 20)
                if self._dec.unconsumed_tail:
                    self._raw = self._dec.unconsumed_tail + self._raw[self._pos :]
                    self._pos = 0
            except zlib.error as e:
                raise UnsafeArchive(f"corrupt archive: gzip data error ({e})") from None
            self._out += len(self._pending)
            if self._out > self._limits.max_total_bytes:
                raise UnsafeArchive("archive expands beyond the total size limit")
            if self._out > 1 << 20 and self._out > self._limits.max_ratio * self._size:
                raise UnsafeArchive(
                    f"compression ratio above {self._limits.max_ratio:g}:1 (a zip bomb?)"
                )
        n = min(len(b), len(self._pending))
        b[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def read_bundle_archive(path: Path, limits: Limits = Limits()) -> dict[str, bytes]:
    """Read a bundle's regular files into memory, refusing anything unsafe or corrupt."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UnsafeArchive(f"{path} not found") from None
    except OSError as e:
        raise UnsafeArchive(f"cannot read {path}: {e.strerror or e}") from None
    if not raw:
        raise UnsafeArchive(f"{path} is empty")
    if raw[:2] != b"\x1f\x8b":
        raise UnsafeArchive(f"{path} is not a gzip archive")
    try:
        return _read_members(raw, limits)
    except UnsafeArchive:
        raise
    except (tarfile.TarError, EOFError, zlib.error, OSError, ValueError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UnsafeArchive(f"corrupt archive: {reason}") from None
    except Exception as e:  # any other failure on garbage input is still a corrupt archive
        raise UnsafeArchive(f"corrupt archive: {type(e).__name__}") from None


def _read_members(raw: bytes, limits: Limits) -> dict[str, bytes]:
    stream = io.BufferedReader(_RatioGuard(raw, limits), buffer_size=1 << 16)
    members: dict[str, bytes] = {}
    total = 0
    count = 0
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for info in tar:
            count += 1
            if count > limits.max_members:
                raise UnsafeArchive(f"more than {limits.max_members} members")
            name = _check_name(info.name)
            if info.issym() or info.islnk():
                raise UnsafeArchive(f"link member {name!r} (links are never followed)")
            if info.isdir():
                continue
            if not info.isfile():
                raise UnsafeArchive(f"special member {name!r} (device, fifo or other)")
            if name in members:
                raise UnsafeArchive(f"duplicate member {name!r}")
            if any(n.startswith(name + "/") for n in members) or any(
                name.startswith(n + "/") for n in members
            ):
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
    while stream.read(1 << 16):  # drain: the gzip trailer (CRC, length) must check out
        pass
    if not members:
        raise UnsafeArchive("archive holds no files")
    return members
