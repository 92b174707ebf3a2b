"""Write ``training.json`` beside a fine-tuned model's weights (format: kit.bundle.training).

In a training script::

    from kit.training.record import TrainingRecorder, load_split

    train, data = load_split("mteb/stsbenchmark-sts", revision=REV, split="train",
                             mteb_task="STSBenchmark")
    recorder = TrainingRecorder(seed=42, data=[data], code=Path(__file__).parent)
    trainer = SentenceTransformerTrainer(..., callbacks=[recorder.callback()])
    trainer.train()
    model.save(folder)
    recorder.write(folder)          # folder/training.json

A trainer without transformers' callbacks calls ``recorder.trained(steps=..., batch_size=...,
losses=[(step, loss), ...])`` instead. The record holds nothing that changes from one run to
the next but what training changes (no times, no paths), so two runs with one seed write the
same bytes, and the model folder keeps one content digest.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from kit import __version__
from kit.bundle.training import FORMAT, FORMAT_VERSION, canonical, parse_record
from kit.errors import ExitCode, KitError
from kit.fsio import atomic_write_bytes
from kit.machine.dataloads import record_dataset_loads
from kit.machine.git import code_state, git_revision
from kit.runfolder import TRAINING

LIBRARIES = (
    "torch",
    "transformers",
    "sentence-transformers",
    "accelerate",
    "datasets",
    "tokenizers",
    "numpy",
)
_SETTINGS = (
    "learning_rate",
    "lr_scheduler_type",
    "warmup_steps",
    "warmup_ratio",
    "weight_decay",
    "max_grad_norm",
    "optim",
    "fp16",
    "bf16",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "num_train_epochs",
    "max_steps",
    "data_seed",
    "batch_sampler",
)


def data_entry(
    rows: Any, *, dataset: str, revision: str | None, split: str, mteb_task: str | None = None
) -> dict[str, Any]:
    """The record of one training split: ``rows`` is a ``datasets.Dataset`` as trained on.

    Its hash is the sha256 of one JSON line per row (the row's values in column order,
    compact, UTF-8), so any copy of the same rows hashes the same, whatever its file format.
    """
    import hashlib

    columns = list(rows.column_names)
    h = hashlib.sha256()
    n = 0
    for batch in rows.iter(batch_size=1000):
        for values in zip(*(batch[c] for c in columns), strict=True):
            line = json.dumps(list(values), ensure_ascii=False, separators=(",", ":"))
            h.update(line.encode("utf-8") + b"\n")
            n += 1
    return {
        "dataset": dataset,
        "revision": revision,
        "split": split,
        "rows": n,
        "columns": columns,
        "sha256": h.hexdigest(),
        "mteb_task": mteb_task,
    }


def load_split(
    dataset: str,
    *,
    revision: str,
    split: str,
    config: str | None = None,
    mteb_task: str | None = None,
) -> tuple[Any, dict[str, Any]]:
    """``datasets.load_dataset`` of one split, and its record with the revision really loaded.

    Offline, ``datasets`` takes the newest cached copy whatever revision was asked for: a
    copy of another revision is refused (REVISION_MISMATCH), as ``evaluate`` refuses one.
    """
    from datasets import load_dataset

    with record_dataset_loads() as seen:
        rows = load_dataset(dataset, config, revision=revision, split=split)
    loaded = [x.revision_loaded for x in seen.loads if x.repo_id in (None, dataset)]
    if loaded and loaded[0] and loaded[0] != revision:
        raise KitError(
            f"training data {dataset}: datasets loaded revision {loaded[0]}, not {revision} "
            "(offline it takes the newest cached copy); fetch that revision",
            ExitCode.REVISION_MISMATCH,
        )
    return rows, data_entry(rows, dataset=dataset, revision=revision, split=split,
                            mteb_task=mteb_task)  # fmt: skip


def library_versions() -> dict[str, str | None]:
    """The installed versions of the libraries training depends on (None: not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def training_code(folder: Path, allow_dirty: bool = False) -> dict[str, Any]:
    """The training code's git state (commit, branch, remotes, dirty); a tree with
    uncommitted changes is refused (USAGE) unless ``allow_dirty`` (then recorded)."""
    if git_revision(folder) is None:
        raise KitError(
            f"training code {folder}: not a git repository with a commit (git init; git commit)",
            ExitCode.USAGE,
        )
    state = code_state(folder, allow_dirty=True)
    if state["dirty"] and not allow_dirty:
        raise KitError(
            f"training code {folder} has uncommitted changes: commit them before training "
            "(or allow_dirty=True, which is recorded)",
            ExitCode.USAGE,
        )
    keys = ("commit", "branch", "remotes", "dirty", "diff_sha256")
    return {k: state.get(k) for k in keys}


class TrainingRecorder:
    """Collects what a training run did and writes it as ``training.json``.

    ``code`` is the training code's folder (a git repository; its state is read now, so a
    dirty tree is refused before any training); ``seed`` may be left to the trainer's
    arguments when ``callback()`` is used.
    """

    def __init__(
        self,
        *,
        data: Sequence[dict[str, Any]],
        seed: int | None = None,
        code: Path | None = None,
        allow_dirty: bool = False,
        base_model: str | None = None,
        loss_function: str | None = None,
    ) -> None:
        self.seed = seed
        self.data = [dict(d) for d in data]
        self.code = training_code(Path(code), allow_dirty) if code is not None else None
        self.base_model = base_model
        self.loss_function = loss_function
        self._trained: dict[str, Any] | None = None

    def trained(
        self,
        *,
        steps: int,
        batch_size: int,
        losses: Iterable[tuple[int, float]],
        epochs: float | None = None,
        hyperparameters: dict[str, Any] | None = None,
    ) -> None:
        """Say what training did: optimizer steps, examples per step, loss per logging step."""
        self._trained = {
            "steps": int(steps),
            "batch_size": int(batch_size),
            "epochs": None if epochs is None else float(epochs),
            "loss": [{"step": int(s), "loss": float(v)} for s, v in losses],
            "hyperparameters": json.loads(json.dumps(hyperparameters or {}, default=str)),
        }

    def from_trainer(self, args: Any, state: Any) -> None:
        """Fill the record from a transformers ``TrainingArguments`` and ``TrainerState``."""
        if self.seed is None:
            self.seed = int(args.seed)
        elif int(args.seed) != self.seed:
            raise KitError(
                f"the trainer ran with seed {args.seed}, the training record says {self.seed}",
                ExitCode.USAGE,
            )
        devices = max(1, int(getattr(args, "world_size", 1) or 1))
        per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps
        settings = {k: _plain(getattr(args, k)) for k in _SETTINGS if hasattr(args, k)}
        self.trained(
            steps=state.global_step,
            batch_size=per_step * devices,
            losses=[(h["step"], h["loss"]) for h in state.log_history if "loss" in h],
            epochs=state.epoch,
            hyperparameters=settings,
        )

    def callback(self) -> Any:
        """A transformers ``TrainerCallback`` that fills the record when training ends."""
        from transformers import TrainerCallback

        recorder = self

        class TrainingRecordCallback(TrainerCallback):
            def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                recorder.from_trainer(args, state)

        return TrainingRecordCallback()

    def record(self) -> dict[str, Any]:
        """The record as ``training.json`` holds it (checked against its schema)."""
        if self._trained is None or self.seed is None:
            raise KitError(
                "nothing to record yet: training has not ended (use callback() or trained())",
                ExitCode.USAGE,
            )
        record = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kit_version": __version__,
            "seed": self.seed,
            "base_model": self.base_model,
            "loss_function": self.loss_function,
            "libraries": library_versions(),
            "data": self.data,
            "code": self.code,
            **self._trained,
        }
        parse_record(canonical(record), TRAINING)  # the schema, before anything is written
        return record

    def write(self, folder: Path) -> Path:
        """Write ``folder/training.json`` (atomically); ``folder`` is the saved model's."""
        folder = Path(folder)
        if not folder.is_dir():
            raise KitError(f"{folder}: not a folder (save the model first)", ExitCode.NOT_FOUND)
        path = folder / TRAINING
        atomic_write_bytes(path, canonical(self.record()))
        return path


def _plain(value: Any) -> Any:
    """A trainer setting as JSON holds it (enums by value, anything else unknown as text)."""
    value = getattr(value, "value", value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
