"""Provenance of the data a run really loaded: dataset revisions and their files' hashes.

Offline, ``datasets`` loads the newest cached copy of a dataset whatever revision was
asked for. ``record_dataset_loads`` (``kit.machine.dataloads``, which verify uses too)
watches every builder that materialises data so the kit can compare the revision really
loaded with the one mteb pins, and hash its files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kit.errors import ExitCode, KitError
from kit.fsio import sha256_file
from kit.machine.dataloads import DatasetLoad, LoadRecorder, record_dataset_loads

__all__ = ["DatasetLoad", "LoadRecorder", "check_faithful", "dataset_provenance"]
__all__ += ["hash_data_files", "record_dataset_loads"]


def hash_data_files(cache_dir: str) -> dict[str, str]:
    """sha256 of the prepared data files of one loaded config (mteb's own caches excluded)."""
    folder = Path(cache_dir)
    if not folder.is_dir():
        return {}
    return {
        p.name: sha256_file(p)
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.name.startswith("cache-") and not p.name.endswith(".lock")
    }


def dataset_provenance(
    task_name: str,
    dataset_path: str,
    pinned_revision: str | None,
    loads: list[DatasetLoad],
    allow_mismatch: bool,
) -> dict[str, Any]:
    """Check the loaded revisions against mteb's pin and describe what was used.

    Raises ``KitError(REVISION_MISMATCH)`` unless ``allow_mismatch``.
    """
    configs = []
    mismatched = []
    for load in loads:
        if load.repo_id and load.repo_id != dataset_path:
            continue  # another dataset loaded by the task (rare); recorded only if ours
        if pinned_revision and load.revision_loaded != pinned_revision:
            mismatched.append(load)
        configs.append(
            {
                "config": load.config,
                "revision_loaded": load.revision_loaded,
                "files_sha256": hash_data_files(load.cache_dir),
            }
        )
    if mismatched and not allow_mismatch:
        bad = mismatched[0]
        raise KitError(
            f"{task_name}: dataset {dataset_path} config '{bad.config}' loaded revision "
            f"{bad.revision_loaded} but mteb pins {pinned_revision} (offline, datasets takes the "
            "newest cached copy); fetch the pinned revision or pass --allow-revision-mismatch",
            ExitCode.REVISION_MISMATCH,
        )
    revisions = sorted({str(c["revision_loaded"] or "") for c in configs})
    return {
        "path": dataset_path,
        "revision_pinned": pinned_revision,
        "revision_loaded": revisions[0] if len(revisions) == 1 else revisions,
        "revision_mismatch": bool(mismatched),
        "configs": sorted(configs, key=lambda c: c["config"]),
    }


def check_faithful(task: Any) -> None:
    """Refuse a task whose loaded data lacks parts mteb's statistics say it has.

    Offline, ``datasets`` only lists the ``default`` config, so a reranking task's
    ``top_ranked`` (or an instruction task's ``instruction``) config is silently skipped
    and the task would run as plain retrieval over the full corpus.
    """
    stats = task.metadata.descriptive_stats or {}
    dataset = getattr(task, "dataset", None)
    if not isinstance(dataset, dict):
        return
    name = task.metadata.name
    for subset_data in dataset.values():
        if not isinstance(subset_data, dict):
            continue
        for split, split_data in subset_data.items():
            if not isinstance(split_data, dict) or "corpus" not in split_data:
                continue
            split_stats = stats.get(split) or {}
            if split_stats.get("top_ranked_statistics") and split_data.get("top_ranked") is None:
                raise KitError(
                    f"{name}: the 'top_ranked' config of {task.metadata.dataset['path']} was not "
                    "loaded (offline, datasets sees only the 'default' config), so this reranking "
                    "task would silently run as retrieval; refusing. Prefetch it online first",
                    ExitCode.UNFAITHFUL_TASK,
                )
            if split_stats.get("instructions_statistics") and not split_data.get("instructions"):
                raise KitError(
                    f"{name}: the instruction config of {task.metadata.dataset['path']} was not "
                    "loaded, so the task would run without its instructions; refusing",
                    ExitCode.UNFAITHFUL_TASK,
                )
