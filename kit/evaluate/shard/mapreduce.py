"""Within-task sharding's two ends around mteb: map (a shard) and reduce (the merge, no model).

Map: ``Mapper`` wraps the loaded model in ``within.MapEncoder`` over the shard's
``store.ShardStore``; ``map_task`` runs one split task through mteb as usual (data, prompts,
the task's own encode calls), so the shard computes and stores its batches of every call; the
task's scores in the shard are meaningless and thrown away (mteb writes them in a temporary
folder). ``write_index`` copies the store's index into the run folder (``within/``), which
the shard's bundle signs.

Reduce: ``reduce_tasks`` runs each split task once through mteb with ``within.ReduceEncoder``
standing in for the model: the embeddings come from the shards' stores, read through their
verified indexes; similarity is the model's function by name, with no weights; the datasets
come from the HF cache. It returns mteb's result file of each task.

``shard_settings`` is what every shard must share for its batches to be one machine's:
model digest, batch size, precision and dtype, device kind, library versions, torch's CPU
capability and numpy's sort (an argsort probe: numpy's SIMD dispatch orders ties
differently, and the encoder sorts by length).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.errors import ExitCode, KitError
from kit.evaluate import mteb_adapter as mt
from kit.evaluate.datasets import check_faithful, dataset_provenance, record_dataset_loads
from kit.evaluate.shard.plan import ShardSpec
from kit.evaluate.shard.store import MergedStore, ShardStore
from kit.evaluate.shard.within import MapEncoder, ReduceEncoder
from kit.fsio import atomic_write_bytes
from kit.runfolder import MODEL_META, WITHIN


def sort_probe() -> str:
    """sha256 of numpy's default argsort of 4096 ints with many ties (like text lengths)."""
    import numpy as np

    probe = -np.random.default_rng(0).integers(0, 40, 4096)
    return hashlib.sha256(np.argsort(probe).astype("<i8").tobytes()).hexdigest()


def shard_settings(run: dict[str, Any]) -> dict[str, Any]:
    """What two shards must share for their batches to be one machine's (from run.json)."""
    import numpy as np
    import sentence_transformers
    import torch
    import transformers

    resolved, encode = run["resolved"], run["encode"]
    return {
        "model": resolved["model"],
        "revision": resolved["revision"],
        "model_digest": (run.get("model") or {}).get("digest"),
        "batch_size": resolved["batch_size"],
        "precision": resolved["precision"],
        "dtype": encode.get("dtype"),
        "device_kind": resolved["device_kind"],
        "versions": {
            "mteb": run["mteb_version"],
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "numpy": np.__version__,
        },
        "cpu": {
            "torch_capability": torch.backends.cpu.get_cpu_capability(),
            "numpy_argsort_probe": sort_probe(),
        },
    }


class Mapper:
    """A within-task shard's encoder and store for the split tasks of one run."""

    def __init__(self, model: Any, run: dict[str, Any], spec: ShardSpec, store: Path) -> None:
        if run["resolved"]["device_kind"] != "cpu":
            raise KitError(
                "--within-tasks runs on CPU only for now: bit-identical batches across GPU "
                "processes are not measured yet (README, within-task sharding)",
                ExitCode.USAGE,
            )
        self.store = ShardStore(store, shard_settings(run), spec.index, spec.count)
        try:
            self.encoder = MapEncoder(model, self.store, spec.index, spec.count)
        except KitError:
            self.store.close()
            raise

    def map_task(self, task: Any, staging: Path, encode_kwargs: dict[str, Any]) -> dict[str, Any]:
        """Run one split task, computing and storing this shard's batches; what it did."""
        first = len(self.encoder.log)
        staging.mkdir(parents=True, exist_ok=True)
        junk = Path(tempfile.mkdtemp(prefix="within-", dir=staging))
        try:
            mt.run_task(self.encoder, task, junk, encode_kwargs)  # its scores mean nothing
        finally:
            shutil.rmtree(junk, ignore_errors=True)
        log = self.encoder.log[first:]
        return {
            "calls": len(log),
            "texts": sum(x["n"] for x in log),
            "batches": sum(x["batches"] for x in log),
            "computed": sum(x["mine"] for x in log),
            "encode_seconds": round(sum(x["encode_s"] for x in log), 3),
            "settings_digest": self.store.digest,
        }

    def write_index(self, out: Path) -> None:
        """The store's index into the run folder (``within/``), which the bundle signs."""
        for name, data in self.store.index_files().items():
            path = Path(out) / WITHIN / name
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, data)

    def close(self) -> None:
        self.encoder.close()


def model_less_similarity(meta: Any, name: str | None) -> tuple[Callable, Callable]:
    """mteb's sentence-transformers wrapper's similarity methods over the model's function
    (by name), without weights."""
    from types import SimpleNamespace

    from mteb.models.sentence_transformer_wrapper import SentenceTransformerEncoderWrapper
    from sentence_transformers.util.similarity import SimilarityFunction

    fn = name or "cosine"
    w = SentenceTransformerEncoderWrapper.__new__(SentenceTransformerEncoderWrapper)
    w.mteb_model_meta = meta
    w.model = SimpleNamespace(
        similarity=SimilarityFunction.to_similarity_fn(fn),
        similarity_pairwise=SimilarityFunction.to_similarity_pairwise_fn(fn),
    )
    return w.similarity, w.similarity_pairwise


@dataclass(frozen=True)
class ReduceRequest:
    """What the reduce needs besides the store: the run's settings as the shards recorded."""

    model: str
    revision: str | None
    benchmark: str | None
    batch_size: int
    seed: int
    allow_revision_mismatch: bool
    offline: bool


@dataclass(frozen=True)
class Reduced:
    """One split task run from the store: mteb's result file, the data it loaded, times."""

    name: str
    result: bytes
    dataset: dict[str, Any]
    evaluation_time: float | None
    seconds: float
    model_meta: bytes | None = None  # mteb's model_meta.json beside the result file


def _meta(model: str, revision: str | None) -> Any:
    import mteb

    try:
        return mteb.get_model_meta(model, revision=revision)
    except Exception:
        raise KitError(
            f"merging within-task shards needs mteb's metadata of {model}: only models in "
            "mteb's registry are supported for now",
            ExitCode.USAGE,
        ) from None


def reduce_tasks(
    names: Sequence[str], store: MergedStore, req: ReduceRequest, work: Path
) -> list[Reduced]:
    """Run each split task once from ``store`` (no model, no encoding); mteb's result files."""
    mt.quiet_libraries()
    meta = _meta(req.model, req.revision)
    calls = [c for s in store.indexes for c in s.calls.values()]
    sim, pair = model_less_similarity(meta, calls[0].get("similarity_fn_name") if calls else None)
    encoder = ReduceEncoder(store, meta, sim, pair)
    by_name = {t.metadata.name: t for t in mt.resolve_tasks(tuple(names), req.benchmark)}
    encode_kwargs = {"batch_size": req.batch_size, "show_progress_bar": False}
    out = []
    for name in names:
        task, t0 = by_name[name], time.perf_counter()
        mt.set_seeds(req.seed)
        ds = task.metadata.dataset
        try:
            with record_dataset_loads() as loads:
                mt.load_task_data(task, req.offline)
            prov = dataset_provenance(
                name, ds["path"], ds.get("revision"), loads.loads, req.allow_revision_mismatch
            )
            check_faithful(task)
            staging = Path(work) / name
            result = mt.run_task(encoder, task, staging, encode_kwargs)
        finally:
            task.unload_data()
        files = sorted(staging.rglob(f"{name}.json"))
        if len(files) != 1:
            raise KitError(f"{name}: mteb wrote no result file in the reduce", ExitCode.INTERNAL)
        seconds = round(time.perf_counter() - t0, 3)
        meta_file = files[0].parent / MODEL_META
        out.append(
            Reduced(
                name,
                files[0].read_bytes(),
                prov,
                result.evaluation_time,
                seconds,
                meta_file.read_bytes() if meta_file.is_file() else None,
            )
        )
    return out
