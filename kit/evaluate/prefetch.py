"""Fill a Hugging Face cache with everything an offline run needs, and say what is there."""

from __future__ import annotations

from typing import Any

from kit.errors import ExitCode, KitError
from kit.evaluate import mteb_adapter as mt
from kit.evaluate.provenance import model_provenance, record_dataset_loads


def prefetch(
    model: str, revision: str | None, tasks: tuple[str, ...], benchmark: str | None
) -> list[dict[str, Any]]:
    """Download (or find cached) the model snapshot and every task's dataset configs."""
    import os

    mt.quiet_libraries()
    offline = os.environ.get("HF_HUB_OFFLINE") in {"1", "true", "True"}
    meta = mt.resolve_model_meta(model, revision, offline)
    out = []
    from kit.evaluate.hfcache import DEFAULT_MODEL_REVISION, install_default_model
    from kit.evaluate.options import DEFAULT_MODEL

    if meta.name == DEFAULT_MODEL and meta.revision == DEFAULT_MODEL_REVISION:
        install_default_model()
    else:
        from huggingface_hub import snapshot_download

        try:
            snapshot_download(meta.name, revision=meta.revision)
        except Exception as e:
            raise KitError(
                f"could not fetch model {meta.name}@{meta.revision}: "
                f"{str(e).splitlines()[0][:200]}",
                ExitCode.DATA_MISSING,
            ) from None
    prov = model_provenance(meta.name, meta.revision)
    out.append({"kind": "model", "name": meta.name, "revision": prov["revision_loaded"]})
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
