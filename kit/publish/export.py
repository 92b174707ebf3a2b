"""Export a verified bundle into a checkout of MTEB's public results repository.

Layout (github.com/embeddings-benchmark/results, as mteb's ``ResultCache`` reads it)::

    results/<org__model>/<revision>/<Task>.json        mteb's result files (as mteb's submit:
                                                       left alone, or the subsets added)
    results/<org__model>/<revision>/model_meta.json    the model's metadata (canonical form)
    results/<org__model>/<revision>/run_settings.jsonl mteb's run settings (merged by task,
                                                       split and subset), when the bundle has them

``plan_export`` reads the checkout, merges (``repomerge``) and applies the repository's rules
(``reporules``) against the pull request's base (``repobase``); ``write_export`` writes all
changed files or none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from kit.bundle.jsonread import parse
from kit.errors import ExitCode, KitError
from kit.fsio import sha256_bytes, write_all_or_none
from kit.publish.repobase import Base, resolve_base
from kit.publish.repomerge import (
    Drift,
    Merged,
    drifts,
    merge_model_meta,
    merge_run_settings,
    merge_task_file,
)
from kit.publish.reporules import Layout, RuleCheck, check_rules
from kit.publish.uploadrev import upload_revision
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
    base: str = ""  # what drift and "nothing removed" are measured against
    accepted: tuple[tuple[str, Drift], ...] = ()  # (task, drift) accepted by request

    def failures(self) -> list[RuleCheck]:
        return [r for r in self.rules if r.failed]

    def shown(self, everything: bool = False) -> tuple[list[RuleCheck], int]:
        """The rule rows of the files the export touches (and every row that is not a plain
        pass), and how many other files of the folder it leaves alone."""
        if everything:
            return list(self.rules), 0
        mine = {(self.folder / name).as_posix() for name, _ in self.files}
        rows = [r for r in self.rules if r.file in mine or r.status != "pass"]
        hidden = {r.file for r in self.rules} - {r.file for r in rows}
        return rows, len(hidden)


def _evidence(bundle: VerifiedBundle) -> dict[str, Any]:
    return {
        "bundle": bundle.path.name,
        "bundle_sha256": bundle.sha256,
        "manifest_sha256": sha256_bytes(bundle.members["manifest.json"]),
        "signature": bundle.signer.status,
        "signer_fingerprint": bundle.signer.fingerprint,
        "signer_principals": list(bundle.signer.principals),
    }


def _bundle_files(
    bundle: VerifiedBundle, revision: str | None
) -> tuple[PurePosixPath, dict[str, bytes]]:
    """The revision folder and the files the export brings (model_meta.json made if absent)."""
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
    return folder, files


def plan_export(
    bundle: VerifiedBundle,
    repo: Path,
    *,
    overwrite: bool = False,
    revision: str | None = None,
    allow_drift: bool = False,
    base_ref: str | None = None,
    base: Base | None = None,
) -> ExportPlan:
    """Merge a verified bundle's files with the checkout's, and apply the repository's rules.

    Reads only. Task files are left alone, added to or replaced per (split, subset) as mteb's
    submit does, run_settings.jsonl follows them (``kit.publish.repomerge``); model_meta.json
    of other content is refused (OUTPUT, a rule row) unless ``overwrite``. Drift and "nothing
    removed" are measured against the pull request's base (``kit.publish.repobase``). A
    local-model bundle needs ``revision``, its hub upload's commit (``upload_revision``).
    ``base``: the base already resolved (review exports many bundles into one work tree).
    """
    repo = Path(repo)
    if repo.exists() and not repo.is_dir():
        raise KitError(f"{repo} is not a folder", ExitCode.OUTPUT)
    base = base or resolve_base(repo, base_ref)
    folder, files = _bundle_files(bundle, revision)
    planned = _merge_files(repo / folder, folder, files, overwrite)
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
    tasks = [n for n in planned if n not in _LAST]
    at_base = {n: d for n in tasks for d in [base.read(folder / n)] if d is not None}
    old_parsed = {n: _parsed(d) for n, d in at_base.items()}
    drift = {n: _drift(old_parsed.get(n), parsed[n], planned[n], base.short) for n in tasks}
    layout = Layout(
        folder=folder,
        meta=parsed.get(MODEL_META) or {},
        files=final,
        other_revisions=others,
        old=at_base,
        parsed=parsed,
        old_parsed=old_parsed,
        drift={n: d for n, d in drift.items() if d},
    )
    rules = check_rules(
        layout,
        registered=_registered(bundle.manifest["model"]["name"]),
        new_model_entry=MTEB_ENTRY in bundle.members,
        allow_drift=allow_drift,
    )
    meta_row = _meta_row(planned[MODEL_META], (folder / MODEL_META).as_posix())
    accepted = tuple(
        (n[: -len(".json")], d) for n, ds in drift.items() for d in ds if allow_drift and d.too_far
    )
    versions = _mteb_versions(files, {n: _parsed(d) for n, d in files.items() if n in tasks})
    return ExportPlan(
        repo,
        folder,
        tuple(planned.items()),
        (meta_row, *rules),
        versions,
        _evidence(bundle),
        base.label,
        accepted,
    )


def _drift(old: Any, new: Any, merged: Merged, base: str) -> tuple[Drift, ...]:
    """Main scores against the base (as the repository's test_results_diff), and the checkout's
    scores the export replaces where the base has none of them."""
    moved = list(drifts(old, new, base)) if old is not None else []
    seen = {(d.split, d.subset) for d in moved}
    return (*moved, *(d for d in merged.drift if (d.split, d.subset) not in seen))


def _meta_row(meta: Merged, where: str) -> RuleCheck:
    """model_meta.json of other content: the kit's own refusal, one row of the table."""
    if meta.action == "refused":
        return RuleCheck("model meta", where, "fail", meta.reason, ExitCode.OUTPUT)
    if meta.action == "replaced":
        return RuleCheck("model meta", where, "allowed", f"replaced by request: {meta.reason}")
    same = "new" if meta.action == "written" else "the same content (lists of names sorted)"
    return RuleCheck("model meta", where, "pass", same)


def _merge_files(
    where: Path, folder: PurePosixPath, files: dict[str, bytes], overwrite: bool
) -> dict[str, Merged]:
    """Each bundle file merged with the one at ``where``: task files first, then
    run_settings.jsonl (only the scores they take) and model_meta.json."""
    planned = {
        name: merge_task_file(_read_existing(where / name), files[name], name)
        for name in sorted(n for n in files if n not in _LAST)
    }
    if RUN_SETTINGS in files:
        keep = {(n[: -len(".json")], *key) for n, m in planned.items() for key in m.taken}
        merged = merge_run_settings(_read_existing(where / RUN_SETTINGS), files[RUN_SETTINGS], keep)
        if merged is not None:
            planned[RUN_SETTINGS] = merged
    planned[MODEL_META] = merge_model_meta(
        _read_existing(where / MODEL_META),
        files[MODEL_META],
        overwrite,
        (folder / MODEL_META).as_posix(),
    )
    return planned


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
    if first.code == ExitCode.OUTPUT:
        return KitError(
            f"{first.reason} (pass --overwrite to replace model_meta.json){more}{tail}", first.code
        )
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
        plan.repo / plan.folder / n: m.data
        for n, m in plan.files
        if m.action not in {"unchanged", "refused"}
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
    base_ref: str | None = None,
) -> list[Exported]:
    """``plan_export`` then ``write_export``: merge a verified bundle into ``repo``."""
    plan = plan_export(
        bundle,
        repo,
        overwrite=overwrite,
        revision=revision,
        allow_drift=allow_drift,
        base_ref=base_ref,
    )
    return write_export(plan)
