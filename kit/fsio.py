"""Crash-safe file writes: write to a temp file in the same folder, fsync, rename."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never half."""
    import tempfile  # only when writing (verify starts without it)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.filename is None:
            e.filename = str(path)  # a full disk or a read-only mount names the file
        raise


def atomic_write_text(path: Path, text: str, mode: int = 0o644) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mode)


def dumps_json(obj: Any) -> str:
    """Canonical JSON used for every record the kit writes (sorted keys, 2-space indent)."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, dumps_json(obj))


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_all_or_none(files: dict[Path, bytes], mode: int = 0o644) -> None:
    """Write several files so that either all hold their new bytes or none changed.

    Every file is first staged (temp name in its folder, fsync); only then are they renamed
    into place. If a step fails, the files already replaced get their old bytes back, the new
    ones are removed and the staged ones deleted, and the error is raised.
    """
    import tempfile

    staged: dict[Path, str] = {}
    old: dict[Path, bytes | None] = {}
    done: list[Path] = []
    try:
        for path, data in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            old[path] = path.read_bytes() if path.is_file() else None
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            staged[path] = tmp
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, mode)
        for path, tmp in staged.items():
            os.replace(tmp, path)
            done.append(path)
    except BaseException as e:
        for path in done:
            before = old[path]
            if before is None:
                path.unlink(missing_ok=True)
            else:
                atomic_write_bytes(path, before, mode)
        for path, tmp in staged.items():
            if path not in done:
                Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.filename is None and staged:
            e.filename = str(next(iter(staged)))
        raise
