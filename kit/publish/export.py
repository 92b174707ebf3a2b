"""Export a verified bundle into a checkout of MTEB's public results repository.

Layout (github.com/embeddings-benchmark/results, as mteb's ``ResultCache`` reads it)::

    results/<org__model>/<revision>/<Task>.json        mteb's result files (merged, as mteb does)
    results/<org__model>/<revision>/model_meta.json    the model's metadata (canonical form)
    results/<org__model>/<revision>/run_settings.jsonl mteb's run settings (merged by task,
                                                       split and subset), when the bundle has them

``plan_export`` reads the checkout, merges (``repomerge``) and applies the repository's rules
(``reporules``); ``write_export`` writes all changed files or none.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from kit.bundle.jsonread import parse
from kit.errors import ExitCode, KitError
from kit.fsio import sha256_bytes, write_all_or_none
from kit.publish.repomerge import (
    Merged,
    merge_model_meta,
    merge_run_settings,
    merge_task_file,
)
from kit.publish.reporules import Layout, RuleCheck, check_rules
from kit.runfolder import (
    MODEL_META,
    MTEB_ENTRY,
    RUN_SETTINGS,
    model_as_path,
    results_dir,
    revision_folder_name,
)
from kit.verify.verified import VerifiedBundle

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
    _component(model_as_path(model), "model name")
    _component(revision_folder_name(revision), "model revision")
    return results_dir(model, revision)


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
    revision = revision_folder_name(model["revision"])
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
    from kit.evaluate.model.identity import digest_folder
    from kit.machine.hfcache import snapshot_folder
    from kit.runfolder import files_from_record, first_difference

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


def _task_files(folder: Path) -> list[str]:
    try:
        return sorted(p.name for p in folder.glob("*.json") if p.name != MODEL_META)
    except OSError:
        return []


def _parsed(data: bytes) -> Any:
    try:
        return parse(data, allow_nan=True)
    except ValueError:
        return None


def _registered(name: str) -> bool:
    """The results CI's test: the name among ``mteb.get_model_metas()``."""
    import mteb

    return name in {m.name for m in mteb.get_model_metas() if m.name}


@dataclass(frozen=True)
class ExportPlan:
    """What an export would do, before anything is written."""

    repo: Path
    folder: PurePosixPath
    files: tuple[tuple[str, Merged], ...]  # name in the folder -> its bytes and action
    rules: tuple[RuleCheck, ...]
    mteb_versions: tuple[str, ...]  # mteb versions that wrote the exported result files
    evidence: dict[str, Any]  # signature evidence for the pull-request description

    def failures(self) -> list[RuleCheck]:
        return [r for r in self.rules if r.failed]


def _evidence(bundle: VerifiedBundle) -> dict[str, Any]:
    return {
        "bundle": bundle.path.name,
        "bundle_sha256": bundle.sha256,
        "manifest_sha256": sha256_bytes(bundle.members["manifest.json"]),
        "signature": bundle.signer.status,
        "signer_fingerprint": bundle.signer.fingerprint,
        "signer_principals": list(bundle.signer.principals),
    }


def plan_export(
    bundle: VerifiedBundle,
    repo: Path,
    *,
    overwrite: bool = False,
    revision: str | None = None,
    allow_drift: bool = False,
) -> ExportPlan:
    """Merge a verified bundle's files with the checkout's, and apply the repository's rules.

    Reads only. Task files and run_settings.jsonl are merged as mteb merges them
    (``kit.publish.repomerge``); model_meta.json of other content is refused (OUTPUT) unless
    ``overwrite``. A local-model bundle needs ``revision``, its hub upload's commit, whose
    cached snapshot must have the bundle's model digest (``upload_revision``).
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
    planned, old = _merge_files(repo / folder, files, overwrite)
    final = {n: m.data for n, m in planned.items()}
    for name in _task_files(repo / folder):
        if name not in final:
            final[name] = (repo / folder / name).read_bytes()
    others = {
        d.name: _task_files(d)
        for d in sorted((repo / folder.parent).glob("*"))
        if d.is_dir() and d.name != folder.name and not d.name.startswith(".")
    }
    parsed = {n: _parsed(d) for n, d in final.items() if n.endswith(".json")}
    layout = Layout(
        folder=folder,
        meta=parsed.get(MODEL_META) or {},
        files=final,
        other_revisions=others,
        old={n: d for n, d in old.items() if planned[n].action != "unchanged"},
        parsed=parsed,
        old_parsed={n: _parsed(d) for n, d in old.items() if n.endswith(".json")},
        drift={n: m.drift for n, m in planned.items() if m.drift},
    )
    rules = check_rules(
        layout,
        registered=_registered(manifest["model"]["name"]),
        new_model_entry=MTEB_ENTRY in bundle.members,
        allow_drift=allow_drift,
    )
    versions = _mteb_versions(files, parsed)
    return ExportPlan(
        repo, folder, tuple(planned.items()), tuple(rules), versions, _evidence(bundle)
    )


def _merge_files(
    where: Path, files: dict[str, bytes], overwrite: bool
) -> tuple[dict[str, Merged], dict[str, bytes]]:
    """Each bundle file merged with the one at ``where`` (model_meta.json and
    run_settings.jsonl last); also the checkout's bytes of the files it already had."""
    order = sorted(files, key=lambda n: (_LAST.index(n) + 1 if n in _LAST else 0, n))
    planned: dict[str, Merged] = {}
    old: dict[str, bytes] = {}
    for name in order:
        before = _read_existing(where / name)
        if before is not None:
            old[name] = before
        if name == MODEL_META:
            planned[name] = merge_model_meta(
                before, files[name], overwrite, (where / name).as_posix()
            )
        elif name == RUN_SETTINGS:
            planned[name] = merge_run_settings(before, files[name])
        else:
            planned[name] = merge_task_file(before, files[name], name)
    return planned, old


def _mteb_versions(files: dict[str, bytes], parsed: dict[str, Any]) -> tuple[str, ...]:
    """The mteb versions the bundle's task files name, sorted."""
    versions = {
        str(p.get("mteb_version"))
        for n in files
        if n.endswith(".json") and n != MODEL_META
        for p in [parsed.get(n)]
        if isinstance(p, dict) and p.get("mteb_version")
    }
    return tuple(sorted(versions))


def rules_failure(plan: ExportPlan, written: bool) -> KitError | None:
    """The error for a plan whose rules fail (the first failure's code), or None."""
    bad = plan.failures()
    if not bad:
        return None
    first = bad[0]
    more = f" (+{len(bad) - 1} more)" if len(bad) > 1 else ""
    tail = "" if written else "; nothing written"
    hint = " (pass --allow-drift to accept it)" if first.code == ExitCode.DRIFT else ""
    return KitError(
        f"results-repository rule {first.rule!r} fails for {first.file}: {first.reason}"
        f"{hint}{more}{tail}",
        first.code,
    )


def write_export(plan: ExportPlan) -> list[Exported]:
    """Write every changed file of a plan whose rules pass: all of them or none."""
    error = rules_failure(plan, written=False)
    if error is not None:
        raise error
    changed = {
        plan.repo / plan.folder / n: m.data for n, m in plan.files if m.action != "unchanged"
    }
    try:
        write_all_or_none(changed)
    except OSError as e:
        where = e.filename or plan.repo
        raise KitError(
            f"cannot write {where}: {e.strerror or e}; nothing written", ExitCode.OUTPUT
        ) from None
    return [Exported(str(plan.repo / plan.folder / n), m.action) for n, m in plan.files]


def export_bundle(
    bundle: VerifiedBundle,
    repo: Path,
    overwrite: bool = False,
    revision: str | None = None,
    allow_drift: bool = False,
) -> list[Exported]:
    """``plan_export`` then ``write_export``: merge a verified bundle into ``repo``."""
    plan = plan_export(
        bundle, repo, overwrite=overwrite, revision=revision, allow_drift=allow_drift
    )
    return write_export(plan)
