"""Cross-record consistency: run.json, the manifest, mteb's result files and mteb's task layout.

Each record is valid on its own by the time this runs (schemas, digests, recomputed scores);
here they must tell the same story: the same task set (no result file for a task run.json does
not list), the same model and revision (run.json, the result folder, model_meta.json, the
manifest, and the content digest when both record one; a training record is the training.json
the digest covers), run.json's main scores equal to those
recomputed from the raw files, each task evaluated on exactly the splits and subsets mteb
evaluates, and a run with a task not complete marked partial in the manifest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from kit.bundle.jsonread import JsonRefused
from kit.bundle.manifest import MANIFEST, SIGNATURE, partial_marking
from kit.bundle.records import BundleRecords
from kit.bundle.scores import close
from kit.bundle.training import binding_problems as training_binding
from kit.bundle.within import (
    MODE,
    index_files,
    is_within_shard,
    parse_index,
    plan_problems,
    recompute_command,
    shard_index_problems,
)
from kit.runfolder import (
    ENVIRONMENT,
    MODEL_META,
    MTEB_ENTRY,
    RESULT_EXTRAS,
    RESULTS,
    RUN,
    RUN_SETTINGS,
    SHARDS,
    WITHIN,
    digest_of,
    files_from_record,
    predictions_member,
    result_file,
    results_dir,
    revision_folder_name,
)
from kit.verify.tasklayout import TaskLayouts

_RECORDS = {RUN, ENVIRONMENT, MANIFEST, SIGNATURE}
_SHARD_FILES = (RUN, ENVIRONMENT, MANIFEST, SIGNATURE, *RESULT_EXTRAS)
#: mteb writes scores rounded to 6 digits; kits before the consistency step recorded the
#: unrounded score in run.json, so a run.json score may differ from the file's by half a unit.
_ROUNDING = 5e-7 + 1e-12


def check_consistency(
    run: dict[str, Any],
    records: BundleRecords,
    tasks: dict[str, Any],
    layouts: TaskLayouts | None,
) -> tuple[list[str], str]:
    """Problems found across the records (empty when consistent) and a summary of what was checked.

    ``records`` are the bundle's members and manifest, each parsed once; ``tasks`` the task
    scores recomputed from the raw files (the scores step's).
    """
    manifest = records.manifest
    problems = [
        *_task_sets(run, manifest, records.members),
        *_model(run, manifest, records),
        *_run_settings(run, records),
        *_main_scores(run, tasks),
        *_partial(run, manifest),
    ]
    layout_note = ""
    if not problems:
        problems += _layouts(run, records, layouts)
        layout_note = (
            "; splits and subsets as mteb defines them"
            if layouts is not None
            else "; splits not checked (mteb not installed)"
        )
    n = len(run["tasks"])
    return (
        problems,
        f"task set, model, scores and status agree across {n} task records{layout_note}",
    )


def _task_sets(
    run: dict[str, Any], manifest: dict[str, Any], members: Mapping[str, bytes]
) -> list[str]:
    out: list[str] = []
    names = [t["name"] for t in run["tasks"]]
    twice = sorted(n for n, c in Counter(names).items() if c > 1)
    if twice:
        out.append(f"run.json lists task {twice[0]!r} more than once")
    resolved = run["resolved"]["tasks"]
    if sorted(resolved) != sorted(names):
        odd = sorted(set(resolved) ^ set(names)) or sorted(resolved)
        out.append(f"run.json's task list and its task records differ (at {odd[0]!r})")
    if manifest["tasks_requested"] != resolved:
        out.append("manifest's requested tasks differ from run.json's")
    shard = run.get("shard")
    if isinstance(shard, dict) and sorted(shard.get("tasks") or []) != sorted(names):
        out.append("run.json's tasks are not its shard plan's")
    complete = {t["name"]: t for t in run["tasks"] if t["status"] == "complete"}
    if set(manifest["tasks"]) != set(complete):
        odd = sorted(set(manifest["tasks"]) ^ set(complete))
        out.append(f"manifest's tasks differ from run.json's complete tasks (at {odd[0]!r})")
    folder = run["results_dir"]
    for name, t in complete.items():
        want = result_file(folder, name)
        if t["result_file"] != want:
            out.append(f"{name}: result file {t['result_file']!r} is not {want}")
    expected = {t["result_file"] for t in complete.values()}
    expected |= _predictions(complete, manifest, out)
    expected |= {f"{folder}/{extra}" for extra in RESULT_EXTRAS}
    if run.get("model_source") in ("local", "hub"):  # a new model's registry entry for mteb
        expected.add(MTEB_ENTRY)
    merged = isinstance(shard, dict) and shard.get("index") is None
    within = is_within_shard(run)
    status = {result_file(folder, t["name"]): t["status"] for t in run["tasks"]}
    for member in sorted(members):
        if member in _RECORDS or member in expected:
            continue
        if (merged and _shard_member(member)) or (within and member.startswith(f"{WITHIN}/")):
            continue
        if member in status:
            out.append(f"{member}: a result file for a task run.json says is {status[member]}")
        elif member.startswith(f"{folder}/") and member.endswith(".json"):
            out.append(f"{member}: a result file for a task run.json does not list")
        elif member.startswith(f"{RESULTS}/"):
            out.append(f"{member}: outside run.json's result folder {folder}")
        else:
            out.append(f"{member}: not a file a bundle of this run holds")
    return out


def _predictions(
    complete: Mapping[str, dict[str, Any]], manifest: dict[str, Any], out: list[str]
) -> set[str]:
    """The predictions members complete tasks record, each the file the manifest lists."""
    members = set()
    for name, t in complete.items():
        block = t.get("predictions") or {}
        member = block.get("member")
        if member is None:
            continue
        listed = manifest["files"].get(member)
        if member != predictions_member(name):
            out.append(f"{name}: predictions member {member!r} is not {predictions_member(name)}")
        elif listed is None:
            out.append(f"{name}: predictions {member} not in the bundle")
        elif (listed["sha256"], listed["size"]) != (block.get("sha256"), block.get("bytes")):
            out.append(f"{name}: predictions {member} differ from run.json's record of them")
        members.add(member)
    return members


def _shard_member(member: str) -> bool:
    parts = member.split("/")
    if len(parts) < 3 or parts[0] != SHARDS or not parts[1].isdigit():
        return False
    return (len(parts) == 3 and parts[2] in _SHARD_FILES) or (len(parts) > 3 and parts[2] == WITHIN)


def within_plan(run: dict[str, Any], members: Mapping[str, bytes]) -> tuple[list[str], str] | None:
    """A within-task shard's index, or a merge's plan, checked from the bundle alone (None:
    neither). A merge must hold every batch of every call of its split tasks exactly once."""
    shard = run.get("shard")
    if not isinstance(shard, dict) or shard.get("mode") != MODE:
        return None
    try:
        if shard.get("index") is not None:
            own = parse_index(index_files(members, f"{WITHIN}/"), "within/")
            problems = shard_index_problems(run, own)
            return problems, f"within/ indexes {len(own.calls)} calls, {len(own.batches)} batches"
        indexes = []
        for item in shard.get("merged_from") or []:
            prefix = f"{SHARDS}/{item['index']}/{WITHIN}/"
            indexes.append(parse_index(index_files(members, prefix), prefix))
    except (ValueError, UnicodeDecodeError, KeyError, TypeError) as e:
        return [f"within-task index refused: {e}"], ""
    problems = plan_problems(indexes, lambda i, tasks: recompute_command(run, i, tasks))
    mapped = {c["task"] for s in indexes for c in s.calls.values()}
    problems += [f"{t}: no shard recorded a call of this split task" for t in
                 shard.get("split") or [] if t not in mapped]  # fmt: skip
    calls = len({k for s in indexes for k in s.calls})
    return problems, (
        f"every batch of {calls} calls of {', '.join(shard.get('split') or [])} held once by "
        f"{len(indexes)} shards"
    )


def _model(run: dict[str, Any], manifest: dict[str, Any], records: BundleRecords) -> list[str]:
    out: list[str] = []
    name, rev = run["resolved"]["model"], run["resolved"]["revision"]
    want = f"{name}@{rev}"
    # a local folder has no revision: mteb files its results under its "no revision" name
    local = rev is None and run.get("model_source") == "local"
    folder_rev = revision_folder_name(None) if local else str(rev)
    folder = results_dir(name, folder_rev).as_posix()
    if run["results_dir"] != folder:
        out.append(f"run.json's result folder {run['results_dir']!r} is not {want}'s ({folder})")
    model = run.get("model")
    if isinstance(model, dict) and (model["name"], model["revision_requested"]) != (name, rev):
        out.append(
            f"run.json's model record names {model['name']}@{model['revision_requested']}, "
            f"its resolved model {want}"
        )
    m = manifest["model"]
    if (m["name"], m["revision"]) != (name, rev):
        out.append(f"manifest names model {m['name']}@{m['revision']}, run.json {want}")
    meta_name = f"{run['results_dir']}/{MODEL_META}"
    if meta_name in records.members:
        try:
            meta = records.json(meta_name)
            if not isinstance(meta, dict):
                out.append("model_meta.json is not a JSON object")
            elif (meta.get("name"), meta.get("revision")) != (name, folder_rev):
                got = f"{meta.get('name')}@{meta.get('revision')}"
                out.append(f"model_meta.json names model {got}, run.json {want}")
        except JsonRefused as e:
            out.append(f"model_meta.json: {e}")
    run_digest = model.get("digest") if isinstance(model, dict) else None
    man_digest = m.get("digest")
    if isinstance(run_digest, str) and isinstance(man_digest, str) and run_digest != man_digest:
        out.append(f"model digest: run.json {run_digest}, manifest {man_digest}")
    if isinstance(model, dict) and isinstance(run_digest, str):
        files = model.get("files")
        if not isinstance(files, list) or digest_of(files_from_record(files)) != run_digest:
            out.append("run.json's model digest is not the digest of its per-file list")
    return out + training_binding(run)  # training.json: the file the digest covers


def _run_settings(run: dict[str, Any], records: BundleRecords) -> list[str]:
    """mteb's run_settings.jsonl: one JSON object a line, each for a task run.json lists."""
    name = f"{run['results_dir']}/{RUN_SETTINGS}"
    if name not in records.members:
        return []
    names = {t["name"] for t in run["tasks"]}
    for i, line in records.lines(name):
        try:
            item = line.get()
        except JsonRefused as e:
            return [f"run_settings.jsonl line {i}: {e}"]
        if not isinstance(item, dict) or item.get("task") not in names:
            what = item.get("task") if isinstance(item, dict) else None
            return [f"run_settings.jsonl line {i} is not for a task run.json lists ({what!r})"]
    return []


def _main_scores(run: dict[str, Any], tasks: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for t in run["tasks"]:
        if t["status"] != "complete" or t["name"] not in tasks:
            continue
        recorded, raw = t.get("main_score"), tasks[t["name"]]["main_score"]
        if recorded is None:
            out.append(f"{t['name']}: run.json records no main_score for a complete task")
        elif not close(float(recorded), raw, _ROUNDING):
            out.append(
                f"{t['name']}: run.json says main_score {recorded!r}, the raw result file "
                f"gives {raw!r} (beyond mteb's 6-digit rounding)"
            )
    return out


def _partial(run: dict[str, Any], manifest: dict[str, Any]) -> list[str]:
    expected, claimed = partial_marking(run), manifest.get("partial")
    if expected == claimed:
        return []
    if claimed is None:
        assert expected is not None
        what = ", ".join(f"{t['name']} {t['status']}" for t in expected["tasks"])
        return [
            f"run.json says the run is {expected['status']}"
            + (f" ({what})" if what else "")
            + " but the manifest does not mark the bundle partial"
        ]
    if expected is None:
        return ["the manifest marks the bundle partial, but run.json says every task is complete"]
    return ["the manifest's partial marking differs from run.json's task statuses"]


def _layouts(run: dict[str, Any], records: BundleRecords, layouts: TaskLayouts | None) -> list[str]:
    if layouts is None:
        return []
    complete = [t for t in run["tasks"] if t["status"] == "complete"]
    bench = run["resolved"].get("benchmark")
    known = layouts.lookup([t["name"] for t in complete], bench)
    ours, theirs = layouts.mteb_version, run.get("mteb_version")
    source = f"mteb {ours}'s definition" + (
        f"; the bundle was made with mteb {theirs}" if theirs != ours else ""
    )
    where = f"benchmark {bench!r}" if bench else "its task registry"
    out: list[str] = []
    for t in complete:
        name, lay = t["name"], known.get(t["name"])
        if lay is None:
            out.append(f"{name}: not a task of {where} in mteb {ours}")
            continue
        try:
            raw = records.json(t["result_file"], allow_nan=True)
            scores = raw["scores"]
            splits = sorted(scores)
        except (JsonRefused, KeyError, TypeError):  # the scores step read it; be safe anyway
            out.append(f"{name}: result file unreadable")
            continue
        want_splits = sorted(lay["eval_splits"])
        if splits != want_splits:
            out.append(f"{name}: result file has splits {splits}, mteb evaluates {want_splits}")
        elif sorted(t.get("eval_splits") or want_splits) != want_splits:
            out.append(f"{name}: run.json's eval_splits {t['eval_splits']}, mteb's {want_splits}")
        elif (t["type"], t["main_metric"]) != (lay["type"], lay["main_score"]):
            out.append(
                f"{name}: run.json says {t['type']} task scored by {t['main_metric']}, mteb "
                f"says {lay['type']} scored by {lay['main_score']}"
            )
        else:
            want_subsets = sorted(lay["hf_subsets"])
            for split in splits:
                items = scores[split] if isinstance(scores[split], list) else []
                got = sorted(
                    str(i.get("hf_subset", "default")) for i in items if isinstance(i, dict)
                )
                if got != want_subsets:
                    out.append(
                        f"{name}: split {split!r} has subsets {_short(got)}, mteb evaluates "
                        f"{_short(want_subsets)}"
                    )
                    break
    return [f"{p} ({source})" for p in out]


def _short(items: list[str], n: int = 6) -> str:
    return str(items) if len(items) <= n else f"{items[:n]} (+{len(items) - n} more)"
