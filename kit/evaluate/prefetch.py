"""Fill a Hugging Face cache with everything an offline run needs, and say what is there."""

from __future__ import annotations

from typing import Any

from kit.errors import ExitCode, KitError
from kit.evaluate import mteb_adapter as mt
from kit.evaluate.datasets import record_dataset_loads
from kit.evaluate.model.source import resolve_source
from kit.machine.hfcache import snapshot_folder


def prefetch(
    model: str, revision: str | None, tasks: tuple[str, ...], benchmark: str | None
) -> list[dict[str, Any]]:
    """Download (or find cached) the model snapshot and every task's dataset configs."""
    import os

    mt.quiet_libraries()
    offline = os.environ.get("HF_HUB_OFFLINE") in {"1", "true", "True"}
    source = resolve_source(model, revision, None, offline)
    out: list[dict[str, Any]] = []
    from kit.evaluate.options import DEFAULT_MODEL
    from kit.machine.hfcache import DEFAULT_MODEL_REVISION, install_default_model

    if source.kind != "registry":  # a local folder, or a hub snapshot fetched by resolving
        where = "local folder" if source.kind == "local" else "hub snapshot"
        out.append(
            {"kind": "model", "name": f"{source.name} ({where})", "revision": source.revision}
        )
    elif source.name == DEFAULT_MODEL and source.revision == DEFAULT_MODEL_REVISION:
        install_default_model()
    else:
        meta = source.meta
        from huggingface_hub import snapshot_download

        try:
            snapshot_download(meta.name, revision=meta.revision)
        except Exception as e:
            raise KitError(
                f"could not fetch model {meta.name}@{meta.revision}: "
                f"{str(e).splitlines()[0][:200]}",
                ExitCode.DATA_MISSING,
            ) from None
    if source.kind == "registry":
        snap = snapshot_folder(source.name, source.revision)
        out.append({"kind": "model", "name": source.name, "revision": snap.name if snap else None})
    for task in mt.resolve_tasks(tasks, benchmark):
        with record_dataset_loads() as loads:
            mt.load_task_data(task, offline)
        task.unload_data()
        for load in loads.loads:
            out.append(
                {
                    "kind": "dataset",
                    "name": f"{load.repo_id} [{load.config}]",
                    "revision": load.revision_loaded,
                    "task": task.metadata.name,
                }
            )
    return out
