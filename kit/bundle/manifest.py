"""Build a bundle's manifest from a run folder (plain data in, plain data out)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from kit import __version__
from kit.bundle import schemas
from kit.bundle.jsonread import JsonRefused, parse
from kit.bundle.scores import ScoreError, aggregates, task_scores
from kit.bundle.training import summary as training_summary
from kit.bundle.within import is_within_shard
from kit.errors import ExitCode, KitError
from kit.fsio import dumps_json, sha256_bytes
from kit.runfolder import ENVIRONMENT, MTEB_ENTRY, RESULT_EXTRAS, RUN, WITHIN, predictions_member

MAPPED = "mapped"  # a split task's status in a within-task shard (kit/bundle/within.py)
MANIFEST_FORMAT = "repro-kit/bundle"
MANIFEST_FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
_SUMMARY_PACKAGES = (
    "mteb",
    "sentence-transformers",
    "transformers",
    "torch",
    "numpy",
    "scikit-learn",
    "datasets",
    "scipy",
)


def _invalid(message: str) -> KitError:
    return KitError(f"invalid run folder: {message}", ExitCode.SCHEMA)


def _load_record(run_dir: Path, name: str) -> dict[str, Any]:
    path = run_dir / f"{name}.json"
    if not path.is_file():
        raise KitError(f"{run_dir} is not a run folder: {name}.json missing", ExitCode.NOT_FOUND)
    try:
        data = parse(path.read_bytes())
    except OSError as e:
        raise _invalid(f"{name}.json cannot be read ({e.strerror or e})") from None
    except JsonRefused as e:
        raise _invalid(f"{name}.json: {e}") from None
    problems = schemas.errors(name, data)
    if problems:
        raise _invalid(
            f"{name}.json: {problems[0]}"
            + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")
        )
    return data


def collect_run_files(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, bytes]]:
    """Read and validate a finished run folder; return run, environment and the member files."""
    run_dir = Path(run_dir)
    run = _load_record(run_dir, "run")
    env = _load_record(run_dir, "environment")
    members: dict[str, bytes] = {
        RUN: (run_dir / RUN).read_bytes(),
        ENVIRONMENT: (run_dir / ENVIRONMENT).read_bytes(),
    }
    results_dir = PurePosixPath(run["results_dir"])
    if results_dir.is_absolute() or ".." in results_dir.parts:
        raise _invalid("results_dir must be a relative path inside the run folder")
    for task in run["tasks"]:
        if task["status"] != "complete":
            continue  # a partial run: the manifest says so (``partial_marking``)
        rel = PurePosixPath(task["result_file"])
        if rel.parent != results_dir:
            raise _invalid(f"{task['name']}: result file outside {results_dir}")
        path = run_dir / rel
        if not path.is_file():
            raise _invalid(f"{task['name']}: {rel} missing")
        members[rel.as_posix()] = path.read_bytes()
        member = (task.get("predictions") or {}).get("member")
        if member is not None:
            if member != predictions_member(task["name"]) or not (run_dir / member).is_file():
                raise _invalid(f"{task['name']}: predictions {member} missing")
            members[member] = (run_dir / member).read_bytes()
    for extra in RESULT_EXTRAS:
        path = run_dir / results_dir / extra
        if path.is_file():
            members[(results_dir / extra).as_posix()] = path.read_bytes()
    if run.get("model_source") in ("local", "hub") and (run_dir / MTEB_ENTRY).is_file():
        members[MTEB_ENTRY] = (run_dir / MTEB_ENTRY).read_bytes()
    if is_within_shard(run):  # the index binding the batches this shard stored
        for path in sorted((run_dir / WITHIN).rglob("*")):
            if path.is_file():
                members[path.relative_to(run_dir).as_posix()] = path.read_bytes()
    return run, env, members


def partial_marking(run: dict[str, Any]) -> dict[str, Any] | None:
    """The manifest's ``partial`` object: the run's status and every task not complete.

    A within-task shard's split task is done when it is ``mapped`` (its batches are stored).

        None when the run and all its tasks are complete.
    """
    left = [t for t in run["tasks"] if t["status"] not in ("complete", MAPPED)]
    if run["status"] == "complete" and not left:
        return None
    tasks = []
    for t in left:
        entry = {"name": t["name"], "status": t["status"]}
        if isinstance(t.get("error"), str):
            entry["error"] = t["error"]
        tasks.append(entry)
    return {"status": run["status"], "tasks": tasks}


def task_entries(run: dict[str, Any], members: Mapping[str, bytes]) -> dict[str, Any]:
    """Every complete task's scores recomputed from mteb's raw result file (bytes parsed here)."""
    return scored_tasks(run, lambda name: parse(members[name], allow_nan=True))


def scored_tasks(run: dict[str, Any], read_result: Callable[[str], Any]) -> dict[str, Any]:
    """Every complete task's scores recomputed from mteb's raw result file.

    ``read_result(path)`` gives a result file's JSON value (NaN allowed), raising KeyError
    when the bundle lacks it and JsonRefused when it is refused (``BundleRecords.json``).
    """
    out = {}
    for task in run["tasks"]:
        if task["status"] != "complete":
            continue
        try:
            raw = read_result(task["result_file"])
        except KeyError:
            raise ScoreError(f"{task['name']}: {task['result_file']} not in bundle") from None
        except JsonRefused as e:
            raise ScoreError(f"{task['name']}: result file: {e}") from None
        out[task["name"]] = _task_entry(task, raw)
    return out


def _task_entry(task: dict[str, Any], raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ScoreError(f"{task['name']}: result file is not a JSON object")
    if raw.get("task_name") != task["name"]:
        raise ScoreError(f"{task['name']}: result file names task {raw.get('task_name')!r}")
    splits = task.get("eval_splits") or None
    try:
        sc = task_scores(raw, splits)
    except ScoreError as e:
        raise ScoreError(f"{task['name']}: {e}") from None
    ds = task.get("dataset") or {}
    predictions = {"predictions": task["predictions"]} if "predictions" in task else {}
    return {
        **predictions,
        "type": task["type"],
        "main_metric": task["main_metric"],
        "main_score": sc["main_score"],
        "splits": sorted({e["split"] for e in sc["entries"]}),
        "entries": sc["entries"],
        "result_file": task["result_file"],
        "dataset": {
            "path": ds.get("path"),
            "revision_pinned": ds.get("revision_pinned"),
            "revision_loaded": ds.get("revision_loaded"),
            "revision_mismatch": ds.get("revision_mismatch"),
        }
        if ds
        else None,
    }


def benchmark_aggregates(tasks: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    agg = aggregates(
        {n: t["main_score"] for n, t in tasks.items()}, {n: t["type"] for n, t in tasks.items()}
    )
    requested = run["resolved"]["tasks"]
    agg["missing"] = sorted(set(requested) - set(tasks))
    agg["complete"] = not agg["missing"]
    return agg


def environment_summary(run: dict[str, Any], env: dict[str, Any]) -> dict[str, Any]:
    torch = env.get("torch", {})
    pkgs = env.get("packages", {})
    container = run.get("container") or env.get("container") or None
    return {
        "cpu": env["hardware"].get("cpu_model"),
        "cpu_count": env["hardware"].get("cpu_count_logical"),
        "memory_bytes": env["hardware"].get("memory_bytes"),
        "gpus": [g.get("name") for g in torch.get("gpus", [])],
        "cuda": torch.get("cuda_build"),
        "cudnn": torch.get("cudnn_version"),
        "os": env["os"].get("platform") or env["os"].get("system"),
        "python": env["python"].get("version"),
        "packages": {p: pkgs.get(p) for p in _SUMMARY_PACKAGES if p in pkgs},
        "torch_threads": torch.get("num_threads"),
        "deterministic_algorithms": torch.get("deterministic_algorithms"),
        "float32_matmul_precision": torch.get("float32_matmul_precision"),
        "native_mps": env.get("native_mps"),
        "device": run["encode"].get("device"),
        "precision": run["encode"].get("precision"),
        "dtype": run["encode"].get("dtype"),
        "batch_size": run["encode"].get("batch_size"),
        "seeds": run.get("seeds"),
        "overrides": run.get("overrides", []),
        "container": container,
        "kit": env.get("kit"),
    }


_SOURCES = ("registry", "local", "hub")


def _code(code: dict[str, Any]) -> dict[str, Any]:
    keys = ("commit", "branch", "remotes", "dirty", "diff_sha256")
    return {k: code.get(k) for k in keys}


def _training(model: dict[str, Any]) -> dict[str, Any]:
    """The manifest's ``training`` (kit/bundle/training.py), when run.json records one."""
    short = training_summary(model.get("training")) if "training" in model else None
    return {"training": short} if short is not None else {}


def build_manifest(
    run: dict[str, Any], env: dict[str, Any], members: Mapping[str, bytes]
) -> dict[str, Any]:
    """The manifest of a run's member files (its task scores recomputed from their bytes)."""
    return manifest_of(run, env, task_entries(run, members), file_digests(members))


def file_digests(members: Mapping[str, bytes]) -> dict[str, dict[str, Any]]:
    """The manifest's ``files``: each member's sha256 and size, by name."""
    return {
        name: {"sha256": sha256_bytes(data), "size": len(data)}
        for name, data in sorted(members.items())
    }


def manifest_of(
    run: dict[str, Any],
    env: dict[str, Any],
    tasks: dict[str, Any],
    files: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """The manifest of ``run`` and ``env``, given its task scores (``scored_tasks``) and files."""
    model = run.get("model") or {}
    manifest = {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_FORMAT_VERSION,
        "kit_version": __version__,
        "model": {
            "name": run["resolved"]["model"],
            "revision": run["resolved"]["revision"],
            "revision_loaded": model.get("revision_loaded"),
            "weights_sha256": model.get("files_sha256", {}),
            **({"digest": model["digest"]} if model.get("digest") else {}),
            **({"source": run["model_source"]} if run.get("model_source") in _SOURCES else {}),
        },
        **({"code": _code(run["code"])} if run.get("code") else {}),
        **_training(model),
        "benchmark": run["resolved"].get("benchmark"),
        "tasks_requested": run["resolved"]["tasks"],
        "tasks": tasks,
        "aggregates": benchmark_aggregates(tasks, run),
        "environment": environment_summary(run, env),
        "files": dict(sorted(files.items())),
    }
    partial = partial_marking(run)
    if partial is not None:
        manifest["partial"] = partial
    return manifest


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return dumps_json(manifest).encode("utf-8")
