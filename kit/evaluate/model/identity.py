"""A model's identity by content: its folder hashed by the digest rule, and what run.json
records of the files a model was loaded from.

The rule itself (which files, the line format, the order) is ``kit.runfolder``'s, since the
reviewer recomputes it (README, "Model identity"; run.schema.json ``model.digest``). So a
folder and its later hub upload have the same digest exactly when they hold the same files
with the same bytes, and the list says which file differs when they do not.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.errors import ExitCode, KitError
from kit.machine.hfcache import snapshot_folder
from kit.runfolder import ModelFile, digest_of, digested, path_order

_CHUNK = 1 << 20
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".json", ".txt", ".model")


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
        dirs[:] = [d for d in dirs if digested(d)]
        for name in files:
            if not digested(name):
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
    return sorted(rels, key=path_order)


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


def model_provenance(
    model_name: str, revision_requested: str | None, folder: Path | None = None
) -> dict[str, Any]:
    """The files a model was loaded from: its content digest and per-file list.

    ``folder`` is a local model folder; without it, the model's HF-cache snapshot at
    ``revision_requested``.
    """
    local = folder is not None
    where = folder if local else snapshot_folder(model_name, revision_requested)
    if where is None:
        return {
            "name": model_name,
            "revision_requested": revision_requested,
            "revision_loaded": None,
            "files_sha256": {},
            "note": "model files not found in the local HF cache",
        }
    d = digest_folder(where)
    return {
        "name": model_name,
        "revision_requested": revision_requested,
        "revision_loaded": None if local else where.name,
        "digest": d.digest,
        "files": [f.to_json() for f in d.files],
        "files_sha256": {f.path: f.sha256 for f in d.files if f.path.endswith(_WEIGHT_SUFFIXES)},
        **({"path": str(where)} if local else {}),
    }
