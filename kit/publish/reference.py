"""Build a reference (the published scores of a model) from a checkout of MTEB's results.

``build_reference(model, repo)`` reads the checkout with mteb's own ``ResultCache`` (the files
under ``results/<org__name>/<revision>/``) and gives, for each task of MTEB(eng, v1) and
MTEB(eng, v2), the model's main score as mteb computes it: the task's result file filtered to
the splits and subsets the benchmark evaluates (``TaskResult.validate_and_filter_scores``),
then the mean of its main scores (``get_score``). When several folders hold a task, the
revision mteb pins comes first, then other revisions, then ``external/``; the first that has
every split and subset wins. The result has the format of the files the kit ships
(``kit/verify/published/``): ``task_main_scores``, one row per split and subset naming its
source file, per-benchmark means over the tasks found, the tasks missing, the checkout's
commit and the mteb version used.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from kit.bundle.scores import aggregates
from kit.errors import ExitCode, KitError
from kit.machine.git import git_revision, remote_url
from kit.publish.resultsrepo import checkout_problem
from kit.runfolder import NO_REVISION

BENCHMARKS = ("MTEB(eng, v1)", "MTEB(eng, v2)")
EXTERNAL = "external"
NOTE = "means over available tasks only; complete iff missing is empty"


def _repo_name(repo: Path) -> str:
    """``org/name`` of the checkout's GitHub origin, else the folder as given."""
    url = remote_url(repo) or ""
    tail = url.removesuffix(".git").rstrip("/")
    if "github.com" in tail:
        return "/".join(tail.replace(":", "/").split("/")[-2:])
    return str(repo)


def _order(path: Path, pinned: str | None) -> tuple[int, str]:
    """Which folder of a task wins: mteb's pinned revision, other revisions, external/."""
    revision = path.parent.name
    ranks = {pinned: 0, EXTERNAL: 2, NO_REVISION: 3}
    return ranks.get(revision, 1), revision


def _benchmark_tasks() -> dict[str, tuple[Any, list[str]]]:
    """Task name -> (mteb's task as the first benchmark filters it, the benchmarks)."""
    import mteb

    tasks: dict[str, tuple[Any, list[str]]] = {}
    for bench in BENCHMARKS:
        for task in mteb.get_benchmark(bench).tasks:
            name = task.metadata.name
            tasks.setdefault(name, (task, []))[1].append(bench)
    return tasks


def _score(path: Path, task: Any) -> tuple[float, Any] | None:
    """The main score of the result file at ``path`` for ``task``, and the filtered result;
    None when a split or subset the task evaluates is missing (or the file is unreadable)."""
    import mteb

    try:
        result = mteb.TaskResult.from_disk(path).validate_and_filter_scores(task)
        score = float(result.get_score())
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (score, result) if math.isfinite(score) else None


def build_reference(model: str, repo: Path) -> dict[str, Any]:
    """The reference of ``model`` from the results checkout ``repo`` (see the module)."""
    problem = checkout_problem(repo)
    if problem is not None:
        raise KitError(
            f"{repo} is not a results checkout ({problem})", ExitCode.NOT_RESULTS_CHECKOUT
        )
    import mteb

    logging.getLogger("mteb").setLevel(logging.ERROR)  # "missing subsets" notices
    tasks = _benchmark_tasks()
    try:
        pinned = mteb.get_model_meta(model, fetch_from_hf=False).revision
    except (KeyError, ValueError):
        pinned = None
    paths: dict[str, list[Path]] = {}
    cache = mteb.ResultCache(repo)
    found = cache.get_cache_paths(
        models=[model], tasks=list(tasks), require_model_meta=False, include_remote=False
    )
    for p in found:
        paths.setdefault(p.stem, []).append(p)
    if not paths:
        raise KitError(
            f"{repo} holds no result of {model} for {', '.join(BENCHMARKS)}", ExitCode.NOT_FOUND
        )
    repo_name, commit = _repo_name(repo), git_revision(repo)
    scores: dict[str, float] = {}
    rows: list[dict[str, Any]] = []
    for name, (task, benches) in sorted(tasks.items()):
        for path in sorted(paths.get(name, []), key=lambda p: _order(p, pinned)):
            got = _score(path, task)
            if got is not None:
                scores[name] = got[0]
                source = f"{repo_name}@{commit}:{path.relative_to(repo).as_posix()}"
                rows += _rows(task, benches, path, got[1], source)
                break
    types = {name: task.metadata.type for name, (task, _) in tasks.items()}
    return {
        "model": model,
        "results_repo": repo_name,
        "results_commit": commit,
        "mteb_used_for_filtering": mteb.__version__,
        "task_main_scores": scores,
        "aggregates": {b: _aggregate(b, tasks, scores, types) for b in BENCHMARKS},
        "missing": sorted(set(tasks) - set(scores)),
        "rows": rows,
    }


def _rows(
    task: Any, benches: list[str], path: Path, result: Any, source: str
) -> list[dict[str, Any]]:
    out = []
    for split, entries in result.scores.items():
        for entry in entries:
            out.append(
                {
                    "task": task.metadata.name,
                    "type": task.metadata.type,
                    "benchmarks": benches,
                    "split": split,
                    "subset": entry["hf_subset"],
                    "main_score": entry["main_score"],
                    "main_metric": task.metadata.main_score,
                    "model_revision": path.parent.name,
                    "mteb_version": result.mteb_version,
                    "dataset_revision": str(result.dataset_revision),
                    "source": source,
                }
            )
    return out


def _aggregate(
    bench: str,
    tasks: dict[str, tuple[Any, list[str]]],
    scores: dict[str, float],
    types: dict[str, str],
) -> dict[str, Any]:
    names = sorted(n for n, (_, benches) in tasks.items() if bench in benches)
    have = {n: scores[n] for n in names if n in scores}
    means = aggregates(have, types)
    return {
        "n_tasks": len(names),
        "n_with_scores": len(have),
        "missing": [n for n in names if n not in scores],
        "mean_task": means["mean_task"],
        "mean_per_type": means["mean_per_type"],
        "mean_type": means["mean_type"],
        "note": NOTE,
    }
