"""What MODEL names: an mteb-registered model, a local folder, or an unregistered hub id.

- registered (``sentence-transformers/all-MiniLM-L6-v2``): mteb's ModelMeta and loader, at the
  revision mteb pins, from the HF cache snapshot;
- a local folder (``./my-model``, ``/abs/path``): a sentence-transformers folder, or a plain
  transformers folder that sentence-transformers loads with mean pooling; named in results
  layouts by ``--model-name ORG/NAME`` (or the name its model card gives);
- an unregistered hub id (``alice/bge-ft``): its HF snapshot (downloaded online, the cached
  one offline), then loaded like a local folder, named by the id, at the snapshot's commit.

Local folders and hub snapshots are loaded the way bare ``mteb.evaluate(SentenceTransformer(
folder), task)`` loads them (mteb's SentenceTransformerEncoderWrapper), so the scores agree.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from kit.errors import ExitCode, KitError

Kind = Literal["registry", "local", "hub"]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_CONFIGS = ("modules.json", "config.json")
_WEIGHTS = ("*.safetensors", "pytorch_model*.bin", "model*.bin", "*.pt")


@dataclass(frozen=True)
class ModelSource:
    """A resolved MODEL argument: how to load it and what to call it."""

    kind: Kind
    name: str  # the name in results layouts (org/name)
    revision: str | None  # mteb's pin, the hub snapshot commit, or None for a local folder
    folder: Path | None  # local folder or hub snapshot (None: registered, found at load)
    meta: Any = None  # mteb's ModelMeta for a registered model
    plain_transformers: bool = False  # no modules.json: sentence-transformers adds mean pooling


def looks_like_path(arg: str) -> bool:
    """A MODEL argument meant as a folder: starts like a path, or is an existing folder."""
    if arg in (".", "..") or arg.startswith(("/", "./", "../", "~")):
        return True
    return os.sep in arg and Path(arg).is_dir() and not _NAME.match(arg)


def check_model_name(name: str) -> str:
    """``--model-name`` must be ORG/NAME (the results repository's folder naming)."""
    if not _NAME.match(name):
        raise KitError(
            f"--model-name {name!r} must be ORG/NAME (letters, digits, '.', '_', '-'), e.g. "
            "alice/bge-small-ft",
            ExitCode.USAGE,
        )
    return name


def check_folder(folder: Path) -> bool:
    """Refuse a folder that is missing or holds no model; True when it is plain transformers."""
    if not folder.exists():
        raise KitError(f"model folder {folder} not found", ExitCode.NOT_FOUND)
    if not folder.is_dir():
        raise KitError(f"model path {folder} is not a folder", ExitCode.NOT_FOUND)
    if not any((folder / c).is_file() for c in _CONFIGS):
        raise KitError(
            f"model folder {folder} holds no model config (modules.json or config.json)",
            ExitCode.NOT_FOUND,
        )
    if not any(p.is_file() for pat in _WEIGHTS for p in folder.rglob(pat)):
        raise KitError(
            f"model folder {folder} holds no weights (*.safetensors or pytorch_model.bin)",
            ExitCode.NOT_FOUND,
        )
    for p in (q for pat in _WEIGHTS for q in folder.rglob(pat)):
        if not os.access(p, os.R_OK):
            raise KitError(f"model weights {p} are unreadable", ExitCode.NOT_FOUND)
    return not (folder / "modules.json").is_file()


def resolve_source(
    arg: str, revision: str | None, model_name: str | None, offline: bool
) -> ModelSource:
    """Resolve MODEL (see the module docstring); bad input is exit 2 or 3, one line."""
    if model_name is not None:
        check_model_name(model_name)
    if looks_like_path(arg):
        if revision is not None:
            raise KitError(
                "--revision is for hub models; a local folder is identified by its content "
                "digest (give the upload's revision to `repro-kit export --revision`)",
                ExitCode.USAGE,
            )
        folder = Path(arg).expanduser().resolve()
        plain = check_folder(folder)
        name = model_name or _name_from_card(folder)
        if name is None:
            raise KitError(
                f"name the model for results layouts: --model-name ORG/NAME (the model card "
                f"of {arg} names none)",
                ExitCode.USAGE,
            )
        return ModelSource("local", name, None, folder, plain_transformers=plain)
    meta = _registered(arg, revision)
    if meta is not None:
        if model_name is not None and model_name != meta.name:
            raise KitError(
                f"--model-name is for new models; {arg} is registered in mteb as {meta.name}",
                ExitCode.USAGE,
            )
        return ModelSource("registry", meta.name, meta.revision, None, meta)
    if not _NAME.match(arg):
        raise KitError(f"unknown model: {_registry_hint(arg)}", ExitCode.NOT_FOUND)
    folder = hub_snapshot(arg, revision, offline)
    plain = check_folder(folder)
    return ModelSource("hub", model_name or arg, folder.name, folder, plain_transformers=plain)


def _registered(name: str, revision: str | None) -> Any:
    import mteb

    try:
        return mteb.get_model_meta(name, revision, fetch_from_hf=False)
    except KeyError:
        return None
    except ValueError as e:  # a revision other than mteb's pin
        raise KitError(f"{name}: {_first_line(e)}", ExitCode.NOT_FOUND) from None


def hub_snapshot(name: str, revision: str | None, offline: bool) -> Path:
    """The HF snapshot folder of an unregistered hub model (downloaded unless offline).

    Not found is exit 3 with mteb's close matches among registered names (a typo is likelier
    than a missing upload).
    """
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name, revision=revision, local_files_only=offline))
    except Exception as e:  # the hub said no, is unreachable, or the cache lacks it
        where = "in the local HF cache (offline)" if offline else "on the hub"
        raise KitError(
            f"unknown model: {_registry_hint(name)}; not found {where} either ({_first_line(e)})",
            ExitCode.NOT_FOUND,
        ) from None


def _registry_hint(name: str) -> str:
    import mteb

    try:
        mteb.get_model_meta(name, None, fetch_from_hf=False)
    except KeyError as e:
        return _first_line(e).rstrip(".")
    return name


def _name_from_card(folder: Path) -> str | None:
    """An ORG/NAME the folder's model card gives (``model_name`` in its front matter)."""
    readme = folder / "README.md"
    if not readme.is_file():
        return None
    try:
        from huggingface_hub import ModelCard

        data = ModelCard.load(readme).data.to_dict()
    except Exception:
        return None
    name = data.get("model_name")
    return name if isinstance(name, str) and _NAME.match(name) else None


def load_folder_model(source: ModelSource, device: str) -> Any:
    """Load a local folder or hub snapshot as bare mteb would, named ``source.name``.

    The wrapper's ModelMeta (mteb's ``from_sentence_transformer_model``) gets the source's
    name and revision, so mteb writes the results under ``ORG__NAME/<revision>``.
    """
    from mteb.models import SentenceTransformerEncoderWrapper
    from sentence_transformers import SentenceTransformer

    assert source.folder is not None
    try:
        st = SentenceTransformer(str(source.folder), device=device, local_files_only=True)
    except Exception as e:
        raise KitError(
            f"could not load the model in {source.folder}: {_first_line(e)}", ExitCode.NOT_FOUND
        ) from None
    wrapper = SentenceTransformerEncoderWrapper(st)
    update: dict[str, Any] = {"name": source.name}
    if source.revision is not None:
        update["revision"] = source.revision
    wrapper.mteb_model_meta = wrapper.mteb_model_meta.model_copy(update=update)
    return wrapper


def _first_line(exc: BaseException) -> str:
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
