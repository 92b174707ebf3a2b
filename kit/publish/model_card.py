"""A model card for a verified bundle's scores, written by mteb's own function.

``mteb create-model-results`` calls ``ModelMeta.push_model_card_to_hub`` (mteb 2.26: it tags the
card ``mteb`` and, with ``add_table_to_model_card``, adds a results table read from a
ResultCache; older mteb versions wrote a ``model-index`` block instead). The kit calls the same
function, not pushing, over a temporary ResultCache holding exactly the bundle's verified
result files, so the card shows the numbers verify checked and nothing else.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from kit.errors import ExitCode, KitError
from kit.fsio import atomic_write_bytes
from kit.runfolder import MODEL_META
from kit.verify.verified import VerifiedBundle


def _meta(manifest: dict[str, Any], members: dict[str, bytes], folder: PurePosixPath) -> Any:
    """mteb's ModelMeta: the registry's, else the bundle's model_meta.json (a new model)."""
    import mteb
    from mteb.models.model_meta import ModelMeta

    name, revision = manifest["model"]["name"], manifest["model"]["revision"]
    try:
        return mteb.get_model_meta(name, revision, fetch_from_hf=False)
    except (KeyError, ValueError):
        pass
    data = members.get((folder / MODEL_META).as_posix())
    if data is None:
        raise KitError(f"{name} is not in mteb's registry and the bundle has no model_meta.json",
                       ExitCode.NOT_FOUND)  # fmt: skip
    try:
        return ModelMeta.model_validate_json_resolved(data)
    except AttributeError:
        return ModelMeta.model_validate(json.loads(data))


def write_model_card(bundle: VerifiedBundle, dest: Path, existing: Path | None = None) -> None:
    """Write mteb's model card for ``bundle``'s tasks to ``dest`` (``existing``: card to update)."""
    import mteb
    from mteb.cache import ResultCache

    manifest, members = bundle.manifest, dict(bundle.members)
    results = {PurePosixPath(t["result_file"]) for t in manifest["tasks"].values()}
    if len(folders := {p.parent for p in results}) != 1:
        raise KitError("the bundle's result files are not in one folder", ExitCode.INTEGRITY)
    folder = folders.pop()
    meta = _meta(manifest, members, folder)
    tasks = [mteb.get_task(name) for name in sorted(manifest["tasks"])]
    # mteb's table is per benchmark: the bundle's own, or one of exactly its tasks
    bench = manifest.get("benchmark")
    benchmark = (
        mteb.get_benchmark(bench)
        if bench
        else mteb.Benchmark(name=f"repro-kit bundle ({len(tasks)} tasks)", tasks=tasks)
    )
    with tempfile.TemporaryDirectory(prefix="repro-kit-card-") as work:
        root = Path(work)
        for rel, data in members.items():
            if PurePosixPath(rel).parent == folder:
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_bytes(data)
        out = root / "card.md"
        meta.push_model_card_to_hub(
            tasks=tasks,
            benchmarks=[benchmark],
            existing_model_card_id_or_path=existing,
            results_cache=ResultCache(root),
            output_path=out,
            add_table_to_model_card=True,
            push_to_hub=False,
        )
        try:
            atomic_write_bytes(Path(dest), out.read_bytes())
        except OSError as e:
            raise KitError(f"cannot write {dest}: {e.strerror or e}", ExitCode.OUTPUT) from None
