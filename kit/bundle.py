"""Package a finished run folder into a deterministic, schema-validated bundle."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kit import schemas
from kit.archive import write_deterministic_targz
from kit.errors import ExitCode, KitError
from kit.manifest import (
    MANIFEST,
    SIGNATURE,
    build_manifest,
    collect_run_files,
    manifest_bytes,
)
from kit.scores import ScoreError

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


def write_bundle(run_dir: Path, dest: Path, sign: Signer | None = None) -> dict[str, Any]:
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
    return {
        "path": str(dest),
        "members": len(members),
        "signed": SIGNATURE in members,
        "size": dest.stat().st_size,
    }


def add_signature(members: dict[str, bytes], sign: Signer) -> dict[str, bytes]:
    """Members of an existing bundle with a (new) signature over its manifest."""
    if MANIFEST not in members:
        raise KitError("bundle has no manifest.json", ExitCode.SCHEMA)
    return {**members, SIGNATURE: sign(members[MANIFEST]).encode("ascii")}
