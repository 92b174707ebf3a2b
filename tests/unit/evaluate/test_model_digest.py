"""The content-digest rule (README, "Submit a new model") and mteb's no-revision name."""

from __future__ import annotations

import hashlib
from pathlib import Path

from kit.evaluate.model.identity import digest_folder
from kit.runfolder import NO_REVISION, digest_of, files_from_record, first_difference


def _folder(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def test_digest_follows_the_written_rule(tmp_path: Path) -> None:
    files = {"b.txt": b"bb", "a/z.bin": b"z" * 3, "1_Pooling/config.json": b"{}"}
    d = digest_folder(_folder(tmp_path / "m", {**files, ".gitattributes": b"x", ".git/HEAD": b"y"}))
    lines = "".join(
        f"{hashlib.sha256(files[p]).hexdigest()}  {len(files[p])}  {p}\n"
        for p in sorted(files, key=str.encode)
    )
    assert d.digest == "sha256:" + hashlib.sha256(lines.encode()).hexdigest()
    assert [f.path for f in d.files] == ["1_Pooling/config.json", "a/z.bin", "b.txt"]
    assert digest_of(files_from_record([f.to_json() for f in d.files])) == d.digest


def test_links_are_followed_and_the_first_difference_named(tmp_path: Path) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(b"weights")
    snap = _folder(tmp_path / "snap", {"config.json": b"{}"})
    (snap / "model.safetensors").symlink_to(blob)  # a hub snapshot is links to blobs
    local = _folder(tmp_path / "local", {"config.json": b"{}", "model.safetensors": b"weights"})
    assert digest_folder(snap).digest == digest_folder(local).digest
    (local / "model.safetensors").write_bytes(b"weightz")
    other = digest_folder(local)
    assert first_difference(digest_folder(snap).files, other.files).startswith(
        "model.safetensors differs (sha256"
    )
    (local / "extra.txt").write_bytes(b"")
    assert first_difference(other.files, digest_folder(local).files) == "extra.txt is extra"


def test_no_revision_is_mteb_s_own_name() -> None:
    from mteb.models.model_meta import ModelMeta

    assert ModelMeta.create_empty().revision == NO_REVISION
