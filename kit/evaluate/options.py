"""Plain data models for an evaluation request."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kit.evaluate.shard.plan import ShardSpec

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_TASKS = ("STSBenchmark",)
PRECISIONS = ("fp32", "fp16", "bf16")
DEVICES = ("auto", "cpu", "cuda", "mps")

# Options that change scores: a resumed run must use the same values.
SCORE_AFFECTING = ("model", "revision", "batch_size", "precision", "seed", "device_kind")


@dataclass
class EvalOptions:
    """What the user asked for, before anything is resolved."""

    model: str = DEFAULT_MODEL
    revision: str | None = None
    tasks: tuple[str, ...] = ()
    benchmark: str | None = None
    output: Path | None = None
    batch_size: int = 32
    device: str = "auto"
    precision: str = "fp32"
    seed: int = 42
    offline: bool = False
    overwrite: bool = False
    allow_revision_mismatch: bool = False
    quiet: bool = False
    inner_progress: bool = True  # the encoder's bar within a task
    command: list[str] = field(default_factory=list)
    hf_cache: dict[str, str] | None = None  # a read-only HF_HOME seen through a writable view
    shard: ShardSpec | None = None  # run only this shard of the tasks (kit/evaluate/shard/)
    model_name: str | None = None  # ORG/NAME of a local folder in results layouts
    code: Path | None = None  # the git repository of the training code (recorded)
    allow_dirty: bool = False  # accept (and record) uncommitted changes in ``code``
    release_date: str | None = None  # a new model's release date (model_meta.json)
    training_datasets: tuple[str, ...] = ()  # mteb task names the new model was trained on
    container: dict[str, Any] | None = None  # the launcher's image record (container evaluate)

    @property
    def is_default_job(self) -> bool:
        return not self.tasks and not self.benchmark

    def to_record(self) -> dict[str, Any]:
        d = asdict(self)
        d["tasks"] = list(self.tasks)
        d["training_datasets"] = list(self.training_datasets)
        d["output"] = str(self.output) if self.output else None
        d["code"] = str(self.code) if self.code else None
        d.pop("command")
        d.pop("quiet")
        d.pop("inner_progress")
        d.pop("hf_cache")
        d.pop("container")
        return d
