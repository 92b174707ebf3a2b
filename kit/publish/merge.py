"""Merge shard bundles (``evaluate --shard I/N`` + ``bundle``) into the bundle of one whole run.

Each shard bundle is verified first (kit/verify/). The shards must agree on everything that
affects scores (model, revision, weights, kit and mteb versions, batch size, precision, dtype,
seed, device kind, overrides, container image and lockfile when recorded) and on the plan (N,
the full task list, the assignment), and together hold every task exactly once.

The merged bundle is an ordinary bundle that ``repro-kit verify`` checks:

- ``run.json``: every task in the order of the full list, each tagged with its ``shard``;
  ``resolved.tasks`` is the full list; ``shard.index`` is null and ``shard.merged_from`` lists
  the shards (bundle name, manifest sha256, signer, command, times, device).
- ``environment.json``: shard 0's; each shard's own records, manifest and signature are kept
  under ``shards/<I>/`` (hardware may differ between machines), so every shard's signature can
  still be checked against its manifest.
- ``results/...``: mteb's task files unchanged; ``model_meta.json`` from shard 0;
  ``run_settings.jsonl``: all shards' lines in the order of the full task list.
- within-task shards (``evaluate --within-tasks``): the tasks split inside themselves are
  scored here, once, from the shards' stores with no model (kit/publish/within_merge.py); each
  shard's index is kept under ``shards/<I>/within/`` and ``verify`` checks the plan from it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from kit.bundle import schemas
from kit.bundle.archive import write_deterministic_targz
from kit.bundle.jsonread import parse
from kit.bundle.manifest import MANIFEST, SIGNATURE, build_manifest, manifest_bytes
from kit.bundle.within import recompute_command
from kit.bundle.write import Signer, add_signature
from kit.errors import ExitCode, KitError
from kit.fsio import dumps_json, sha256_bytes
from kit.publish.within_merge import is_within, reduce_split_tasks, within_files
from kit.runfolder import ENVIRONMENT, MODEL_META, RECORDS, RESULT_EXTRAS, RUN, RUN_SETTINGS
from kit.verify.verified import VerifiedBundle

# What every shard must share: label and where it is (record, path...).
AGREE: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("model", "run", ("resolved", "model")),
    ("model revision", "run", ("resolved", "revision")),
    ("model weights (sha256)", "run", ("model", "files_sha256")),
    ("kit version", "run", ("kit_version",)),
    ("mteb version", "run", ("mteb_version",)),
    ("batch size", "run", ("resolved", "batch_size")),
    ("precision", "run", ("resolved", "precision")),
    ("dtype", "run", ("encode", "dtype")),
    ("seed", "run", ("resolved", "seed")),
    ("device kind", "run", ("resolved", "device_kind")),
    ("benchmark", "run", ("resolved", "benchmark")),
    ("overrides", "run", ("overrides",)),
    ("container image", "run", ("container", "image_id")),
    ("image lockfile", "env", ("container", "image", "lockfile_sha256")),
    ("results folder", "run", ("results_dir",)),
    ("shard count", "run", ("shard", "count")),
    ("full task list", "run", ("shard", "tasks_all")),
    ("task assignment", "run", ("shard", "assignment")),
    ("shard mode", "run", ("shard", "mode")),
    ("tasks split inside themselves", "run", ("shard", "split")),
)


@dataclass
class ShardBundle:
    """One verified shard bundle, as plain data."""

    name: str
    members: dict[str, bytes]
    run: dict[str, Any]
    env: dict[str, Any]
    signer: dict[str, Any] | None = None

    @property
    def shard(self) -> dict[str, Any]:
        return self.run.get("shard") or {}

    @property
    def label(self) -> str:
        return f"{self.name} (shard {self.shard.get('spec')})"


def _fail(message: str) -> KitError:
    return KitError(message, ExitCode.SHARDS)


def _get(d: Any, *path: str) -> Any:
    for key in path:
        d = d.get(key) if isinstance(d, dict) else None
    return d


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_shard(bundle: VerifiedBundle) -> ShardBundle:
    """A verified bundle as a shard; refused (SHARDS) if its run was not made with --shard."""
    if _get(bundle.run, "shard", "index") is None:
        raise _fail(
            f"{bundle.path} is not a shard bundle (its run was not made with evaluate --shard)"
        )
    signer = bundle.signer.checked_json()
    return ShardBundle(
        str(bundle.path), dict(bundle.members), bundle.run, bundle.environment, signer
    )


def check_shards(shards: Sequence[ShardBundle]) -> list[ShardBundle]:
    """The shards in index order, once they agree and cover every task exactly once."""
    if not shards:
        raise _fail("no shard bundles given")
    first = shards[0]
    for label, record, path in AGREE:
        want = _get(getattr(first, record), *path)
        for other in shards[1:]:
            got = _get(getattr(other, record), *path)
            if got != want:
                raise _fail(
                    f"shards disagree on {label}: {first.label} has {_short(want)}, "
                    f"{other.label} has {_short(got)}"
                )
    plan = first.shard
    split = list(plan.get("split") or [])
    by_index: dict[int, ShardBundle] = {}
    for s in shards:
        i = s.shard["index"]
        if i in by_index:
            twice = ", ".join(s.shard["tasks"])
            raise _fail(
                f"shard {s.shard['spec']} given twice: {by_index[i].name} and {s.name} "
                f"(task(s) {twice} would count twice)"
            )
        by_index[i] = s
        want = [*plan["assignment"][i], *split]
        if sorted(s.shard["tasks"]) != sorted(want) or sorted(s.shard["tasks"]) != sorted(
            t["name"] for t in s.run["tasks"]
        ):
            raise _fail(
                f"{s.label} holds {_short([t['name'] for t in s.run['tasks']])}, but the plan "
                f"gives shard {i} {_short(want)}"
            )
    owner: dict[str, ShardBundle] = {}
    for s in shards:
        for t in s.run["tasks"]:
            if t["name"] in owner and t["name"] not in split:
                raise _fail(f"task {t['name']} is in both {owner[t['name']].label} and {s.label}")
            owner[t["name"]] = s
    missing = [i for i in range(plan["count"]) if i not in by_index]
    if missing:
        raise _fail(_missing(first.run, missing, split))
    uncovered = [t for t in plan["tasks_all"] if t not in owner]
    extra = sorted(set(owner) - set(plan["tasks_all"]))
    if uncovered or extra:
        raise _fail(f"tasks not covered: {uncovered}; tasks not in the full list: {extra}")
    return [by_index[i] for i in sorted(by_index)]


def _missing(run: dict[str, Any], missing: list[int], split: list[str]) -> str:
    plan = run["shard"]
    tasks = [t for i in missing for t in plan["assignment"][i]]
    specs = ", ".join(f"{i}/{plan['count']}" for i in missing)
    if not split:
        return f"missing shard(s) {specs}: task(s) {', '.join(tasks)} not covered"
    what = f"its batches of {', '.join(split)}" + (
        f" and task(s) {', '.join(tasks)}" if tasks else ""
    )
    again = "; ".join(recompute_command(run, i, ",".join(split)) for i in missing)
    return f"shard(s) {specs} missing ({what}); recompute: {again}"


def _run_settings(shards: Sequence[ShardBundle], results_dir: str, order: list[str]) -> bytes:
    """All shards' run_settings.jsonl lines, in the order of the full task list."""
    lines = []
    for s in shards:
        data = s.members.get(f"{results_dir}/{RUN_SETTINGS}", b"")
        for line in data.decode("utf-8").splitlines():
            try:
                task = parse(line, allow_nan=True).get("task")
            except (ValueError, AttributeError):
                task = None
            lines.append((order.index(task) if task in order else len(order), line))
    lines.sort(key=lambda item: item[0])  # stable: a task's lines keep their order
    return "".join(f"{line}\n" for _, line in lines).encode("utf-8")


def _keep_shard(s: ShardBundle, results_dir: str, files: dict[str, bytes]) -> dict[str, Any]:
    """Copy a shard's records (and within-task index) under ``shards/<I>/``; its entry."""
    folder = f"shards/{s.shard['index']}"
    for name in (*RECORDS, MANIFEST, SIGNATURE):
        if name in s.members:
            files[f"{folder}/{name}"] = s.members[name]
    for extra in RESULT_EXTRAS:
        if f"{results_dir}/{extra}" in s.members:
            files[f"{folder}/{extra}"] = s.members[f"{results_dir}/{extra}"]
    files.update(within_files(s))
    return {
        "index": s.shard["index"],
        "spec": s.shard["spec"],
        "source": s.shard.get("source"),
        "files": f"{folder}/",
        "bundle": PurePosixPath(s.name.replace("\\", "/")).name,
        "manifest_sha256": sha256_bytes(s.members[MANIFEST]),
        "signed": SIGNATURE in s.members,
        "signer": s.signer,
        "command": s.run.get("command"),
        "started_at": s.run.get("started_at"),
        "finished_at": s.run.get("finished_at"),
        "device": _get(s.run, "resolved", "device"),
        "cpu": _get(s.env, "hardware", "cpu_model"),
        "gpus": [g.get("name") for g in _get(s.env, "torch", "gpus") or []],
    }


def merge_members(
    shards: Sequence[ShardBundle],
    command: list[str],
    reduced: dict[str, tuple[dict[str, Any], bytes]] | None = None,
) -> dict[str, bytes]:
    """Members (manifest included, unsigned) of the bundle of the whole run.

    ``reduced``: each split task's entry and result file (a within-task plan's reduce).
    """
    shards = check_shards(shards)
    base, plan = shards[0], shards[0].shard
    results_dir = base.run["results_dir"]
    order = list(plan["tasks_all"])
    entries = {t["name"]: (s, t) for s in shards for t in s.run["tasks"]}
    files: dict[str, bytes] = {}
    tasks = []
    for name in order:
        if name in (plan.get("split") or ()):
            path = entry_file(reduced, name)
            assert reduced is not None  # entry_file refuses otherwise
            entry, files[path] = reduced[name]
            tasks.append(entry)
            continue
        s, entry = entries[name]
        tasks.append({**entry, "shard": s.shard["index"]})
        files[entry["result_file"]] = s.members[entry["result_file"]]
        member = (entry.get("predictions") or {}).get("member")
        if member is not None:  # the shard's predictions member, as verified there
            files[member] = s.members[member]
    if f"{results_dir}/{MODEL_META}" in base.members:
        files[f"{results_dir}/{MODEL_META}"] = base.members[f"{results_dir}/{MODEL_META}"]
    elif reduced and MODEL_META in reduced:  # within-task shards that only mapped
        files[f"{results_dir}/{MODEL_META}"] = reduced[MODEL_META][1]
    if any(f"{results_dir}/{RUN_SETTINGS}" in s.members for s in shards):
        files[f"{results_dir}/{RUN_SETTINGS}"] = _run_settings(shards, results_dir, order)
    merged_from = [_keep_shard(s, results_dir, files) for s in shards]
    run = copy.deepcopy(base.run)
    run["command"] = list(command)
    run["options"] = {k: v for k, v in run["options"].items() if k != "shard"}
    run["resolved"]["tasks"] = order
    run["tasks"] = tasks
    run["status"] = "complete"
    run["started_at"] = min(s.run["started_at"] for s in shards)
    run["finished_at"] = max(s.run["finished_at"] or "" for s in shards) or None
    run["resumed_at"] = []
    run["shard"] = {
        **{k: plan[k] for k in ("count", "tasks_all", "assignment", "costs") if k in plan},
        **{k: plan[k] for k in ("loads", "cost_model", "mode", "split", "store") if k in plan},
        "index": None,
        "spec": f"merged {plan['count']} shards",
        "source": "repro-kit merge",
        "tasks": order,
        "merged_from": merged_from,
    }
    problems = schemas.errors("run", run)
    if problems:
        raise KitError(f"merged run.json would be invalid: {problems[0]}", ExitCode.SCHEMA)
    files[RUN] = dumps_json(run).encode("utf-8")
    files[ENVIRONMENT] = base.members[ENVIRONMENT]
    manifest = build_manifest(run, base.env, files)
    problems = schemas.errors("manifest", manifest)
    if problems:
        raise KitError(f"merged manifest would be invalid: {problems[0]}", ExitCode.SCHEMA)
    return {**files, MANIFEST: manifest_bytes(manifest)}


def entry_file(reduced: dict[str, tuple[dict[str, Any], bytes]] | None, name: str) -> str:
    """Where a split task's result file goes (its entry's ``result_file``)."""
    if not reduced or name not in reduced:
        raise _fail(f"{name} is split inside itself but was not reduced (give the stores)")
    return str(reduced[name][0]["result_file"])


@dataclass(frozen=True)
class MergeInfo:
    """What ``write_merged`` wrote: the file, shard/task/member counts, signed, size."""

    path: str
    shards: int
    tasks: int
    members: int
    signed: bool
    size: int


def write_merged(
    bundles: Sequence[VerifiedBundle],
    dest: Path,
    sign: Signer | None = None,
    command: list[str] | None = None,
    stores: Sequence[Path] = (),
    offline: bool = False,
) -> MergeInfo:
    """Merge verified shard bundles into one bundle at ``dest`` (atomic write).

    Refuses (SHARDS) shards that disagree, a missing shard or a task given twice. Within-task
    shards: ``stores`` hold their batches; each split task is scored here, once, with no
    model (kit/publish/within_merge.py).
    """
    dest = Path(dest)
    if dest.is_dir():
        raise KitError(
            f"{dest} is a folder; give a file name such as merged.tar.gz", ExitCode.USAGE
        )
    shards = [load_shard(b) for b in bundles]
    reduced = None
    if is_within(shards[0].shard) and shards[0].shard.get("split"):
        reduced = reduce_split_tasks(check_shards(shards), stores, offline)
    members = merge_members(shards, command or ["repro-kit", "merge"], reduced)
    if sign is not None:
        members = add_signature(members, sign)
    try:
        write_deterministic_targz(members, dest)
    except OSError as e:
        raise KitError(f"cannot write {dest}: {e.strerror or e}", ExitCode.OUTPUT) from None
    run = parse(members[RUN])
    return MergeInfo(
        str(dest),
        run["shard"]["count"],
        len(run["tasks"]),
        len(members),
        sign is not None,
        dest.stat().st_size,
    )
