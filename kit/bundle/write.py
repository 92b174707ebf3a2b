"""Package a finished run folder into a deterministic, schema-validated bundle."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.bundle import schemas
from kit.bundle.archive import write_deterministic_targz
from kit.bundle.manifest import (
    MANIFEST,
    SIGNATURE,
    build_manifest,
    collect_run_files,
    manifest_bytes,
)
from kit.bundle.scores import ScoreError
from kit.errors import ExitCode, KitError

Signer = Callable[[bytes], str]


def bundle_members(run_dir: Path, sign: Signer | None = None) -> dict[str, bytes]:
    """All members of the bundle of ``run_dir``: manifest, records, mteb's raw results."""
    run, env, members = collect_run_files(run_dir)
    try:
        manifest = build_manifest(run, env, members)
    except ScoreError as e:
        raise KitError(f"invalid run folder: {e}", ExitCode.SCHEMA) from None
    problems = schemas.errors("manifest", manifest)
    if problems:
        raise KitError(f"manifest would be invalid: {problems[0]}", ExitCode.SCHEMA)
    data = manifest_bytes(manifest)
    out = {**members, MANIFEST: data}
    if sign is not None:
        out[SIGNATURE] = sign(data).encode("ascii")
    return out


@dataclass(frozen=True)
class BundleInfo:
    """What ``write_bundle`` wrote: the file, its member count, whether signed, its size, and
    the manifest's partial marking (None for a complete run)."""

    path: str
    members: int
    signed: bool
    size: int
    partial: dict[str, Any] | None = None


def write_bundle(run_dir: Path, dest: Path, sign: Signer | None = None) -> BundleInfo:
    """Write the bundle of ``run_dir`` to ``dest`` (atomically); return a short summary."""
    dest = Path(dest)
    if dest.is_dir():
        raise KitError(
            f"{dest} is a folder; give a file name such as bundle.tar.gz", ExitCode.USAGE
        )
    members = bundle_members(Path(run_dir), sign)
    try:
        write_deterministic_targz(members, dest)
    except OSError as e:
        raise KitError(f"cannot write {dest}: {e.strerror or e}", ExitCode.OUTPUT) from None
    partial = json.loads(members[MANIFEST]).get("partial")
    return BundleInfo(str(dest), len(members), SIGNATURE in members, dest.stat().st_size, partial)


def add_signature(members: dict[str, bytes], sign: Signer) -> dict[str, bytes]:
    """Members of an existing bundle with a (new) signature over its manifest."""
    if MANIFEST not in members:
        raise KitError("bundle has no manifest.json", ExitCode.SCHEMA)
    return {**members, SIGNATURE: sign(members[MANIFEST]).encode("ascii")}
