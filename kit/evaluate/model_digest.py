"""A model's identity by content: one digest over every file of its folder.

The rule (README, "Model identity"; run.schema.json ``model.digest``):

- every regular file under the folder, symbolic links to files followed (a Hugging Face
  snapshot is links to blobs), except paths with a component starting with ``.`` (``.git/``,
  ``.gitattributes``, ``.cache/``: version-control and hub bookkeeping, which a local folder and
  its upload do not share);
- each file gives the line ``<sha256 hex>  <size>  <relative POSIX path>\\n``;
- lines in the byte order of their UTF-8 paths; the digest is ``sha256:`` and the sha256 hex of
  the UTF-8 text of all lines.

So a folder and its later hub upload have the same digest exactly when they hold the same
files with the same bytes, and the list says which file differs when they do not.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from kit.errors import ExitCode, KitError

_CHUNK = 1 << 20


@dataclass(frozen=True)
class ModelFile:
    """One file of a model folder: relative POSIX path, size in bytes, sha256 hex."""

    path: str
    size: int
    sha256: str

    def line(self) -> str:
        return f"{self.sha256}  {self.size}  {self.path}\n"

    def to_json(self) -> dict[str, object]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


@dataclass(frozen=True)
class ModelDigest:
    """The digest of a folder and the per-file list it was computed from."""

    digest: str
    files: tuple[ModelFile, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def _hash_file(path: Path) -> tuple[int, str]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


def _walk(folder: Path) -> list[str]:
    rels: list[str] = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if name.startswith("."):
                continue
            p = Path(root) / name
            if p.is_file():  # follows a link to a file; skips dangling links and sockets
                rel = p.relative_to(folder).as_posix()
                if "\n" in rel or "\r" in rel:
                    raise KitError(
                        f"model folder {folder}: a file name holds a line break ({rel!r})",
                        ExitCode.NOT_FOUND,
                    )
                rels.append(rel)
    return sorted(rels, key=lambda r: r.encode("utf-8", "surrogateescape"))


def digest_folder(folder: Path) -> ModelDigest:
    """Hash every file of ``folder`` by the rule above; unreadable files are exit 3."""
    folder = Path(folder)
    files = []
    for rel in _walk(folder):
        try:
            size, sha = _hash_file(folder / rel)
        except OSError as e:
            raise KitError(
                f"model file {folder / rel} is unreadable: {e.strerror or e}", ExitCode.NOT_FOUND
            ) from None
        files.append(ModelFile(rel, size, sha))
    return ModelDigest(digest_of(files), tuple(files))


def digest_of(files: list[ModelFile] | tuple[ModelFile, ...]) -> str:
    """The digest of a per-file list (recomputed by verify from run.json's list)."""
    ordered = sorted(files, key=lambda f: f.path.encode("utf-8", "surrogateescape"))
    text = "".join(f.line() for f in ordered)
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def first_difference(
    expected: list[ModelFile] | tuple[ModelFile, ...],
    actual: list[ModelFile] | tuple[ModelFile, ...],
) -> str | None:
    """The first file (in path order) that differs, is missing or is extra, as a phrase."""
    want = {f.path: f for f in expected}
    have = {f.path: f for f in actual}
    for path in sorted(set(want) | set(have), key=lambda r: r.encode("utf-8", "surrogateescape")):
        a, b = want.get(path), have.get(path)
        if a is None:
            return f"{path} is extra"
        if b is None:
            return f"{path} is missing"
        if a.size != b.size:
            return f"{path} differs (size {b.size}, recorded {a.size})"
        if a.sha256 != b.sha256:
            return f"{path} differs (sha256 {b.sha256[:12]}…, recorded {a.sha256[:12]}…)"
    return None


def files_from_record(entries: list[dict[str, object]]) -> tuple[ModelFile, ...]:
    """The per-file list as run.json records it (already schema-checked)."""
    return tuple(ModelFile(str(e["path"]), int(str(e["size"])), str(e["sha256"])) for e in entries)
