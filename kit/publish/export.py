"""Export a verified bundle into a checkout of MTEB's public results repository.

Layout (github.com/embeddings-benchmark/results, as mteb's ``ResultCache`` reads it)::

    results/<org__model>/<revision>/<Task>.json        mteb's raw result files, byte-for-byte
    results/<org__model>/<revision>/model_meta.json    the file mteb wrote for the run
    results/<org__model>/<revision>/run_settings.jsonl mteb's run settings, when the bundle has them

Pure layout and merge decisions work on plain data; reading and writing stay in
``export_bundle``, the I/O edge.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from kit.bundle.jsonread import parse
from kit.errors import ExitCode, KitError
from kit.evaluate.model_load import no_revision
from kit.evaluate.options import model_as_path
from kit.fsio import atomic_write_bytes, sha256_bytes
from kit.verify.verified import VerifiedBundle

MODEL_META = "model_meta.json"
RUN_SETTINGS = "run_settings.jsonl"
_LAST = (RUN_SETTINGS, MODEL_META)  # written last: ResultCache skips folders without meta


@dataclass(frozen=True)
class Exported:
    """One file of the export and what happened to it: written, overwritten or unchanged."""

    path: str
    action: str


def _component(value: str, what: str) -> str:
    """A single safe path component (the bundle is untrusted input even when verified)."""
    if not value or value in {".", ".."} or any(c in value for c in "/\\\0"):
        raise KitError(f"bundle names an unsafe {what}: {value!r}", ExitCode.UNSAFE_ARCHIVE)
    return value


def revision_folder(model: str, revision: str | None) -> PurePosixPath:
    """``results/<org__model>/<revision>``, named as mteb names it."""
    return PurePosixPath(
        "results",
        _component(model_as_path(model), "model name"),
        _component(str(revision), "model revision"),
    )


def bundle_results_folder(manifest: dict[str, Any]) -> PurePosixPath:
    """The folder in the bundle that holds mteb's files (every task's result file's parent)."""
    parents = {PurePosixPath(t["result_file"]).parent for t in manifest["tasks"].values()}
    if len(parents) != 1:
        raise KitError(
            "bundle's result files are not in one folder: "
            + ", ".join(sorted(p.as_posix() for p in parents)),
            ExitCode.INTEGRITY,
        )
    return parents.pop()


def export_files(
    manifest: dict[str, Any], members: dict[str, bytes]
) -> tuple[PurePosixPath, dict[str, bytes]]:
    """The revision folder and its files (name -> bytes) as the bundle holds them.

    Task files keep their names (``<Task>.json``); ``model_meta.json`` and
    ``run_settings.jsonl`` are included when present. Every file must match the verified
    manifest's sha256, so what is exported is exactly what was verified.
    """
    model = manifest["model"]
    revision = model["revision"] if model["revision"] is not None else no_revision()
    dest = revision_folder(model["name"], revision)
    src = bundle_results_folder(manifest)
    if src != dest:
        raise KitError(
            f"bundle keeps results in {src}, but its manifest names {dest}", ExitCode.INTEGRITY
        )
    names = [PurePosixPath(t["result_file"]).name for t in manifest["tasks"].values()]
    for task, name in zip(manifest["tasks"], names, strict=True):
        if name != f"{_component(task, 'task name')}.json":
            raise KitError(f"{task}: result file is named {name}", ExitCode.INTEGRITY)
    names += [n for n in (RUN_SETTINGS, MODEL_META) if (src / n).as_posix() in members]
    files = {}
    for name in names:
        rel = (src / name).as_posix()
        listed = manifest["files"].get(rel)
        data = members.get(rel)
        if data is None or listed is None or sha256_bytes(data) != listed["sha256"]:
            raise KitError(f"{rel} does not match the verified manifest", ExitCode.INTEGRITY)
        files[name] = data
    if MODEL_META in files:
        check_model_meta(files[MODEL_META], model["name"], revision)
    return dest, files


def check_model_meta(data: bytes, name: str, revision: str | None) -> None:
    """The results repository's CI requires model_meta.json to name its own folder."""
    try:
        meta = parse(data, allow_nan=True)
        got = (meta["name"], meta["revision"])
    except (ValueError, KeyError, TypeError):
        raise KitError(f"{MODEL_META} in the bundle is not mteb's", ExitCode.INTEGRITY) from None
    if got != (name, revision):
        raise KitError(
            f"{MODEL_META} names {got[0]}@{got[1]}, the manifest {name}@{revision}",
            ExitCode.INTEGRITY,
        )


def mteb_model_meta(name: str, revision: str | None, device: str | None) -> bytes:
    """model_meta.json as ``mteb.evaluate`` writes it for a model the kit loaded on ``device``.

    For bundles without mteb's own file: ``ModelMeta.load_model(device=...)`` records the
    device in ``loader_kwargs``; ``ResultCache.save_to_cache`` dumps ``to_dict()`` with
    ``indent=4, default=str``. Only ``training_datasets`` is sorted (mteb writes a set in
    hash order), so that re-exporting gives the same bytes.
    """
    import mteb

    try:
        meta = mteb.get_model_meta(name, revision, fetch_from_hf=False)
    except KeyError:
        raise KitError(
            f"bundle has no {MODEL_META} and mteb has no metadata for {name}", ExitCode.NOT_FOUND
        ) from None
    loader_kwargs = {**meta.loader_kwargs, **({"device": device} if device else {})}
    meta = meta.model_copy(update={"loader_kwargs": loader_kwargs, "experiment_kwargs": None})
    out = meta.to_dict()
    if isinstance(meta.training_datasets, set):  # mteb lists a set in hash order: sort it
        out["training_datasets"] = sorted(out["training_datasets"])
    return json.dumps(out, default=str, indent=4).encode("utf-8")


def plan_merge(
    files: dict[str, bytes], existing: dict[str, bytes | None], overwrite: bool
) -> dict[str, str]:
    """What to do with each file given what the checkout holds (pure).

    Identical files are left alone; a differing one is refused unless ``overwrite``.
    """
    plan, differing = {}, []
    for path, data in files.items():
        old = existing.get(path)
        if old is None:
            plan[path] = "written"
        elif old == data:
            plan[path] = "unchanged"
        elif overwrite:
            plan[path] = "overwritten"
        else:
            differing.append(path)
    if differing:
        more = f" (+{len(differing) - 1} more)" if len(differing) > 1 else ""
        raise KitError(
            f"{differing[0]} exists and differs{more}; nothing written "
            "(pass --overwrite to replace)",
            ExitCode.OUTPUT,
        )
    return plan


def _read_existing(path: Path) -> bytes | None:
    if path.is_dir():
        raise KitError(f"{path} is a folder, expected a file", ExitCode.OUTPUT)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise KitError(f"cannot read {path}: {e.strerror or e}", ExitCode.OUTPUT) from None


_SHA = re.compile(r"^[0-9a-f]{40}$")


def upload_revision(
    manifest: dict[str, Any], run: dict[str, Any], revision: str | None
) -> str | None:
    """The hub revision a local-model bundle is exported under, checked by content digest.

    A local folder has no revision; its results go to the results repository under the
    revision of its hub upload, and only if the cached snapshot of that revision holds the
    same files (the bundle's model digest). Registered and hub models keep their own.
    """
    from kit.evaluate.model_digest import digest_folder, files_from_record, first_difference
    from kit.evaluate.provenance import snapshot_folder

    model = manifest["model"]
    if model.get("source") != "local":
        if revision is not None and revision != model["revision"]:
            raise KitError(
                f"--revision {revision}: the bundle evaluated {model['name']} at "
                f"{model['revision']}; --revision is for local-model bundles",
                ExitCode.USAGE,
            )
        return None
    if revision is None:
        raise KitError(
            f"this bundle evaluated a local folder; upload it ({model['name']}) and give the "
            "upload's commit: --revision SHA (checked against the bundle's model digest)",
            ExitCode.USAGE,
        )
    if not _SHA.match(revision):
        raise KitError(f"--revision {revision!r} is not a 40-hex commit", ExitCode.USAGE)
    snap = snapshot_folder(model["name"], revision)
    if snap is None:
        raise KitError(
            f"{model['name']}@{revision} is not in the local HF cache; fetch it first: "
            f"repro-kit prefetch {model['name']} --revision {revision}",
            ExitCode.DATA_MISSING,
        )
    here = digest_folder(snap)
    if here.digest != model.get("digest"):
        recorded = (run.get("model") or {}).get("files") or []
        what = first_difference(files_from_record(recorded), here.files)
        raise KitError(
            f"{model['name']}@{revision[:12]} holds other files than the evaluated folder "
            f"(digest {here.digest}, bundle {model.get('digest')}: {what}); refusing to export",
            ExitCode.MODEL_DIGEST,
        )
    return revision


def _rebind(folder: PurePosixPath, files: dict[str, bytes], revision: str) -> PurePosixPath:
    """Move the files to ``<org__model>/<revision>``; model_meta.json names the revision."""
    if MODEL_META in files:
        meta = json.loads(files[MODEL_META])
        meta["revision"] = revision
        files[MODEL_META] = json.dumps(meta, indent=4, default=str).encode()
    return folder.parent / _component(revision, "model revision")


def export_bundle(
    bundle: VerifiedBundle, repo: Path, overwrite: bool = False, revision: str | None = None
) -> list[Exported]:
    """Merge a verified bundle's results into the results-repo checkout ``repo``.

    Writes each file atomically; refuses (OUTPUT) an existing file that differs unless
    ``overwrite``. A local-model bundle needs ``revision``, its hub upload's commit, whose
    cached snapshot must have the bundle's model digest (``upload_revision``). Returns what
    happened to each target file.
    """
    repo = Path(repo)
    if repo.exists() and not repo.is_dir():
        raise KitError(f"{repo} is not a folder", ExitCode.OUTPUT)
    manifest = bundle.manifest
    bound = upload_revision(manifest, bundle.run, revision)
    folder, files = export_files(manifest, dict(bundle.members))
    if bound is not None:
        folder = _rebind(folder, files, bound)
    if MODEL_META not in files:
        device = (manifest.get("environment") or {}).get("device")
        files[MODEL_META] = mteb_model_meta(
            manifest["model"]["name"], manifest["model"]["revision"], device
        )
    order = sorted(files, key=lambda n: (_LAST.index(n) + 1 if n in _LAST else 0, n))
    targets = {(folder / n).as_posix(): files[n] for n in order}
    plan = plan_merge(targets, {p: _read_existing(repo / p) for p in targets}, overwrite)
    for rel, data in targets.items():
        if plan[rel] != "unchanged":
            try:
                atomic_write_bytes(repo / rel, data)
            except OSError as e:
                raise KitError(
                    f"cannot write {repo / rel}: {e.strerror or e}", ExitCode.OUTPUT
                ) from None
    return [Exported(str(repo / rel), plan[rel]) for rel in targets]
