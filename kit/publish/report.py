"""The report model: one plain dict built from a verified bundle and a reference.

Renderers (kit/publish/html.py, kit/publish/markdown.py) only format this dict. Every mean carries a
label that says what it averages, so a reader cannot take a partial mean for a benchmark's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kit import __version__
from kit.bundle.scores import aggregates
from kit.bundle.training import describe as describe_training
from kit.errors import ExitCode, KitError
from kit.publish import baseline
from kit.publish.against import is_number, load_against, plural
from kit.publish.baseline import BASELINE, REPRODUCTION
from kit.verify.reference import compare_with_reference
from kit.verify.verified import VerifiedBundle
from kit.verify.zeroshot import of_records

_LIST_AT_MOST = 8  # name the tasks of a mean up to this many


def build_report(
    bundle: VerifiedBundle,
    *,
    against: Path | None = None,
    tolerance: float = 0.001,
    mean_tolerance: float = 0.005,
    role: str = REPRODUCTION,
) -> dict[str, Any]:
    """The report model of a verified bundle, against a reference when ``against`` is given.

    ``against`` is a published-scores JSON, a folder of mteb result files, or another bundle
    (verified here, accepted unsigned). Raises REFERENCE when no task has a reference score.
    ``role`` is what the reference is: ``reproduction`` (pass / fail at the tolerances) or
    ``baseline`` (win / tie / loss, and the verdict "beats the baseline on ...").
    """
    report = bundle.report
    manifest = bundle.manifest
    tasks = manifest["tasks"]
    ref, against_info = load_against(against) if against is not None else (None, None)
    cmp = compare_with_reference(tasks, ref, tolerance, mean_tolerance) if ref else None
    rows = _task_rows(tasks, cmp)
    compared = [r for r in rows if r["ok"] is not None]
    if against_info is not None and not compared:
        raise KitError(
            f"no task of {bundle.path} has a score in {against_info['source']}", ExitCode.REFERENCE
        )
    scope = _scope(manifest, against_info)
    means = _means(manifest, rows, scope, mean_tolerance if ref else None)
    types = _type_rows(rows, mean_tolerance) if ref else []
    zs = of_records(bundle.run, bundle.records.json, sorted(tasks)).to_json()
    for r in rows:
        r["zero_shot"] = zs["tasks"].get(r["task"])
    mode = BASELINE if role == BASELINE and ref else REPRODUCTION
    if mode == BASELINE:
        baseline.mark_rows(rows, means + types, tolerance, mean_tolerance)
    return {
        "mode": mode,
        "zero_shot": zs,
        "baseline": baseline.summary(rows) if mode == BASELINE else None,
        "title": f"{manifest['model']['name']} on {len(tasks)} MTEB task(s)",
        "generator": f"repro-kit {__version__}",
        "bundle": {
            "path": str(bundle.path),
            "model": manifest["model"]["name"],
            "revision": manifest["model"]["revision"],
            "revision_text": revision_text(manifest["model"]),
            "kit_version": manifest["kit_version"],
            "benchmark": manifest.get("benchmark"),
            "n_tasks": len(tasks),
        },
        "verify": [{"name": c.name, "ok": c.ok, "reason": c.reason} for c in report.checks],
        "signer": _signer(bundle),
        "against": against_info,
        "tolerance": tolerance,
        "mean_tolerance": mean_tolerance,
        "tasks": rows,
        "types": types,
        "means": means,
        "scope": scope,
        "published_means": (against_info or {}).get("published_means", []),
        "summary": {**_summary(rows, means), "only_against": _only_against(tasks, ref)},
        "environment": environment_rows(manifest),
        "partial": manifest.get("partial"),
    }


def _signer(bundle: VerifiedBundle) -> dict[str, Any]:
    """Who signed: checked against a trust anchor, present but unchecked, or unsigned."""
    who = bundle.signer
    if who.status == "verified":
        return {
            "status": "verified",
            "text": "good signature by "
            + (", ".join(who.principals) or "the given public key")
            + f" ({who.fingerprint})",
            "principals": list(who.principals),
            "fingerprint": who.fingerprint,
            "key_type": who.key_type,
        }
    if who.status == "unsigned":
        return {"status": "unsigned", "text": "unsigned", "principals": [], "fingerprint": None}
    return {
        "status": "not_checked",
        "text": f"signature present, not checked (key {who.fingerprint}; no allowed signers "
        "or public key was given to check it against)",
        "principals": [],
        "fingerprint": who.fingerprint,
        "key_type": None,
    }


def _task_rows(tasks: dict[str, Any], cmp: dict[str, Any] | None) -> list[dict[str, Any]]:
    by_name = {r["task"]: r for r in cmp["tasks"]} if cmp else {}
    rows = []
    for name, t in sorted(tasks.items()):
        r = by_name.get(name, {})
        rows.append(
            {
                "task": name,
                "type": t["type"],
                "main_metric": t["main_metric"],
                "splits": t["splits"],
                "score": t["main_score"],
                "reference": r.get("reference"),
                "delta": r.get("delta"),
                "ok": r.get("ok"),
            }
        )
    return rows


def _names(tasks: list[str]) -> str:
    if len(tasks) <= _LIST_AT_MOST:
        return ", ".join(tasks)
    return ", ".join(tasks[:_LIST_AT_MOST]) + f", ... {len(tasks) - _LIST_AT_MOST} more"


def _scope(manifest: dict[str, Any], against: dict[str, Any] | None) -> dict[str, Any]:
    """Which benchmark, if any, the bundle's task set is: whole, partial, or none."""
    ours = set(manifest["tasks"])
    known: dict[str, list[str]] = dict((against or {}).get("benchmarks") or {})
    bench = manifest.get("benchmark")
    complete = bool(manifest["aggregates"].get("complete"))
    if bench and complete:
        return {
            "partial": False,
            "benchmarks": [bench],
            "text": f"the bundle ran the whole {bench} benchmark: these are its means",
        }
    if bench:
        missing = manifest["aggregates"].get("missing") or []
        return {
            "partial": True,
            "benchmarks": [bench],
            "text": f"partial benchmark: {len(ours)} of {len(ours) + len(missing)} {bench} "
            f"tasks (missing {_names(missing)}); not the {bench} average",
        }
    whole = [b for b, ts in known.items() if set(ts) == ours]
    if whole:
        return {
            "partial": False,
            "benchmarks": whole,
            "text": f"the bundle's tasks are exactly {' and '.join(whole)}: these are its means",
        }
    part = [b for b, ts in known.items() if ours & set(ts)]
    if part:
        pieces = [f"{len(ours & set(known[b]))} of {len(known[b])} {b} tasks" for b in part]
        return {
            "partial": True,
            "benchmarks": part,
            "text": f"partial benchmark ({'; '.join(pieces)}): "
            + ", ".join(f"not the {b} average" for b in part),
        }
    return {
        "partial": True,
        "benchmarks": [],
        "text": "the bundle's own task selection, not a benchmark: not an MTEB benchmark average",
    }


def _means(
    manifest: dict[str, Any],
    rows: list[dict[str, Any]],
    scope: dict[str, Any],
    mean_tolerance: float | None,
) -> list[dict[str, Any]]:
    """Named means over all the bundle's tasks and, if not all have one, over those compared."""
    compared = [r for r in rows if r["ok"] is not None]
    if mean_tolerance is not None and len(compared) == len(rows):
        return _mean_rows(rows, scope, mean_tolerance, "")
    out = _mean_rows(rows, scope, None, "")
    if mean_tolerance is None:
        return out
    return out + _mean_rows(compared, None, mean_tolerance, " with a reference score")


def _mean_rows(
    rows: list[dict[str, Any]],
    scope: dict[str, Any] | None,
    tol: float | None,
    qualifier: str,
) -> list[dict[str, Any]]:
    names = [r["task"] for r in rows]
    types = {r["task"]: r["type"] for r in rows}
    ours = aggregates({r["task"]: r["score"] for r in rows}, types)
    theirs = (
        aggregates({r["task"]: r["reference"] for r in rows}, types) if tol is not None else None
    )
    partial = ""
    if scope is not None and scope["partial"] and scope["benchmarks"]:
        partial = " — partial benchmark, " + ", ".join(
            f"not the {b} average" for b in scope["benchmarks"]
        )
    elif scope is not None and scope["partial"]:
        partial = " — the bundle's own task selection, not a benchmark average"
    type_names = sorted(ours["mean_per_type"])
    out = [
        _mean(
            "mean_task",
            f"Mean over {plural(len(names), 'task')}{qualifier} ({_names(names)}){partial}",
            ours["mean_task"],
            theirs["mean_task"] if theirs else None,
            tol,
            len(names),
        ),
        _mean(
            "mean_type",
            f"Mean over task types{qualifier} ({plural(len(type_names), 'type')}: "
            f"{', '.join(type_names)})",
            ours["mean_type"],
            theirs["mean_type"] if theirs else None,
            tol,
            len(names),
        ),
    ]
    for t in type_names:
        n = sum(1 for r in rows if r["type"] == t)
        out.append(
            _mean(
                f"mean_per_type.{t}",
                f"{t} mean ({plural(n, 'task')}{qualifier})",
                ours["mean_per_type"][t],
                theirs["mean_per_type"][t] if theirs else None,
                tol,
                n,
            )
        )
    return out


def _mean(
    key: str, label: str, score: float, ref: float | None, tol: float | None, n: int
) -> dict[str, Any]:
    delta = None if ref is None else score - ref
    return {
        "id": key,
        "label": label,
        "n_tasks": n,
        "score": score,
        "reference": ref,
        "delta": delta,
        "ok": None if delta is None or tol is None else abs(delta) <= tol,
    }


def _type_rows(rows: list[dict[str, Any]], tol: float) -> list[dict[str, Any]]:
    """Per task type: mean score and mean reference over the compared tasks (for the chart)."""
    out = []
    for t in sorted({r["type"] for r in rows if r["ok"] is not None}):
        mine = [r for r in rows if r["type"] == t and r["ok"] is not None]
        score = sum(r["score"] for r in mine) / len(mine)
        ref = sum(r["reference"] for r in mine) / len(mine)
        out.append(
            {
                "type": t,
                "n_tasks": len(mine),
                "score": score,
                "reference": ref,
                "delta": score - ref,
                "ok": abs(score - ref) <= tol,
            }
        )
    return out


def _only_against(tasks: dict[str, Any], ref: Any) -> list[str]:
    """Tasks the reference or other bundle has that this bundle lacks."""
    return sorted(set(ref.scores) - set(tasks)) if ref is not None else []


def _summary(rows: list[dict[str, Any]], means: list[dict[str, Any]]) -> dict[str, Any]:
    compared = [r for r in rows if r["ok"] is not None]
    failed = [r["task"] for r in compared if not r["ok"]]
    bad_means = [m["label"] for m in means if m["ok"] is False]
    return {
        "n_tasks": len(rows),
        "n_compared": len(compared),
        "n_pass": len(compared) - len(failed),
        "n_fail": len(failed),
        "failed": failed,
        "no_reference": [r["task"] for r in rows if r["ok"] is None],
        "means_failed": bad_means,
        "ok": None if not compared else not failed and not bad_means,
    }


def environment_rows(manifest: dict[str, Any]) -> list[list[str]]:
    """(label, value) pairs of what explains a number: model, versions, hardware, settings."""
    env = manifest.get("environment") or {}
    pkgs = env.get("packages") or {}
    model = manifest["model"]
    rows: list[list[str]] = [
        ["Model", str(model["name"])],
        ["Model revision", revision_text(model)],
    ]
    loaded = model.get("revision_loaded")
    if loaded and loaded != model.get("revision"):
        rows.append(["Model revision loaded", str(loaded)])
    if model.get("source"):
        rows.append(["Model source", str(model["source"])])
    if model.get("digest"):
        rows.append(["Model content digest", str(model["digest"])])
    code = manifest.get("code")
    if isinstance(code, dict):
        remotes = code.get("remotes") if isinstance(code.get("remotes"), dict) else {}
        where = ", ".join(str(u) for u in (remotes or {}).values()) or "no remote"
        dirty = f" DIRTY (diff sha256 {code.get('diff_sha256')})" if code.get("dirty") else ""
        rows.append(["Training code", f"{where} @ {code.get('commit')}{dirty}"])
    if isinstance(manifest.get("training"), dict):
        rows.append(["Training record", describe_training(manifest["training"])])
    kit: dict[str, Any] = env["kit"] if isinstance(env.get("kit"), dict) else {}
    kit_text = str(manifest.get("kit_version"))
    if kit.get("git_revision"):
        kit_text += f" (git {kit['git_revision']})"
    rows.append(["repro-kit", kit_text])
    for label, pkg in (("torch", "torch"), ("mteb", "mteb"), ("sentence-transformers", None)):
        rows.append([label, str(pkgs.get(pkg or label, "not recorded"))])
    rows += [
        ["Device", str(env.get("device"))],
        ["Precision", f"{env.get('precision')} (dtype {env.get('dtype')})"],
        ["Batch size", str(env.get("batch_size"))],
        ["CPU", f"{env.get('cpu')} ({env.get('cpu_count')} logical cores)"],
        ["Memory", _gib(env.get("memory_bytes"))],
        ["GPU", ", ".join(str(g) for g in env.get("gpus") or []) or "none"],
    ]
    if env.get("cuda"):
        rows.append(["CUDA / cuDNN", f"{env.get('cuda')} / {env.get('cudnn')}"])
    rows += [
        ["OS", str(env.get("os"))],
        ["Python", str(env.get("python"))],
        ["Torch threads", str(env.get("torch_threads"))],
        ["Deterministic algorithms", str(env.get("deterministic_algorithms"))],
        ["Seeds", json.dumps(env.get("seeds"), sort_keys=True)],
        ["Image", _image(env.get("container"))],
    ]
    if env.get("overrides"):
        rows.append(["Overrides", json.dumps(env["overrides"], sort_keys=True)])
    return rows


def revision_text(model: dict[str, Any]) -> str:
    """A model's revision, or "local folder" and its content digest for a folder without one."""
    if model.get("revision") is not None:
        return str(model["revision"])
    digest = model.get("digest")
    if model.get("source") == "local" or digest:
        return "local folder" + (f", content digest {digest}" if digest else "")
    return "none recorded"


def _gib(n: Any) -> str:
    return f"{n / 2**30:.1f} GiB" if is_number(n) else "not recorded"


def _image(container: Any) -> str:
    """The container image the run used, if any (launcher's record or the in-image one)."""
    if not isinstance(container, dict):
        return "none (not run in a container)"
    image = container.get("image")
    if isinstance(image, dict):  # recorded from inside: /etc/repro-kit/image.json
        image = image.get("tag") or image.get("name") or json.dumps(image, sort_keys=True)
    if not image:
        return f"{container.get('runtime') or 'container'}, no image recorded"
    parts = [str(image)]
    if container.get("image_id"):
        parts.append(str(container["image_id"]))
    digests = container.get("repo_digests")
    if isinstance(digests, list) and digests:
        parts.append(str(digests[0]))
    return " ".join(parts)
