"""Plain data models for an evaluation request, and its translations.

``EvalOptions`` is what the user asked for. ``RecordedSettings`` are the settings a bundle
records that a re-run repeats; ``options_from_recorded`` turns them into the ``EvalOptions``
of a re-run, and ``evaluate_args`` turns ``EvalOptions`` into ``repro-kit evaluate``
arguments (for a run in an image), so a re-run on this host and one in a container read the
recording the same way.
"""

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
    within_tasks: bool = False  # split the largest tasks by the encoder's batches (shard/)
    store: Path | None = None  # where a within-task shard appends its batches
    model_name: str | None = None  # ORG/NAME of a local folder in results layouts
    code: Path | None = None  # the git repository of the training code (recorded)
    allow_dirty: bool = False  # accept (and record) uncommitted changes in ``code``
    release_date: str | None = None  # a new model's release date (model_meta.json)
    training_datasets: tuple[str, ...] = ()  # mteb task names the new model was trained on
    container: dict[str, Any] | None = None  # the launcher's image record (container evaluate)
    predictions: bool = True  # keep mteb's per-sample predictions (predictions/<Task>.json.gz)
    predictions_top_k: int | None = None  # retrieval: keep each query's best K documents

    @property
    def is_default_job(self) -> bool:
        return not self.tasks and not self.benchmark

    def to_record(self) -> dict[str, Any]:
        d = asdict(self)
        d["tasks"] = list(self.tasks)
        d["training_datasets"] = list(self.training_datasets)
        d["output"] = str(self.output) if self.output else None
        d["code"] = str(self.code) if self.code else None
        d["store"] = str(self.store) if self.store else None
        d.pop("command")
        d.pop("quiet")
        d.pop("inner_progress")
        d.pop("hf_cache")
        d.pop("container")
        return d


@dataclass(frozen=True)
class RecordedSettings:
    """The score-affecting settings a run records (its ``resolved`` and override options)."""

    model: str
    revision: str | None
    batch_size: int
    precision: str
    seed: int
    device_kind: str
    allow_revision_mismatch: bool


def options_from_recorded(
    settings: RecordedSettings,
    tasks: tuple[str, ...],
    *,
    model_folder: str | None = None,
    output: Path | None = None,
    offline: bool = False,
    hf_cache: dict[str, str] | None = None,
    command: list[str] | None = None,
) -> EvalOptions:
    """The options that evaluate ``tasks`` again with a recording's settings, from scratch.

    ``model_folder`` is where a local model's folder is (as the evaluating process sees it):
    the model is then loaded from it under its recorded name, at no revision.
    """
    return EvalOptions(
        model=model_folder if model_folder is not None else settings.model,
        model_name=settings.model if model_folder is not None else None,
        revision=None if model_folder is not None else settings.revision,
        tasks=tasks,
        output=output,
        batch_size=settings.batch_size,
        device=settings.device_kind,
        precision=settings.precision,
        seed=settings.seed,
        offline=offline,
        overwrite=True,
        allow_revision_mismatch=settings.allow_revision_mismatch,
        quiet=True,
        inner_progress=False,
        hf_cache=hf_cache,
        command=list(command or []),
    )


def evaluate_args(opts: EvalOptions) -> list[str]:
    """``repro-kit evaluate`` arguments for ``opts``: model, tasks and encode settings.

    The launcher's own flags are left to it (kit/container/launch.py adds --output, --offline
    for a network-less run, and --bundle/--no-bundle, --sign/--no-sign); so are the host-only
    fields (hf_cache, command, inner_progress) and those a re-run never sets (shard, code,
    new-model metadata).
    """
    args = [opts.model]
    if opts.model_name is not None:
        args += ["--model-name", opts.model_name]
    if opts.revision:
        args += ["--revision", opts.revision]
    if opts.tasks:
        args += ["--tasks", ",".join(opts.tasks)]
    if opts.benchmark:
        args += ["--benchmark", opts.benchmark]
    args += [
        "--batch-size",
        str(opts.batch_size),
        "--precision",
        opts.precision,
        "--seed",
        str(opts.seed),
        "--device",
        opts.device,
    ]
    if opts.overwrite:
        args.append("--overwrite")
    if opts.quiet:
        args.append("-q")
    if opts.allow_revision_mismatch:
        args.append("--allow-revision-mismatch")
    if not opts.predictions:
        args.append("--no-predictions")
    if opts.predictions_top_k is not None:
        args += ["--predictions-top-k", str(opts.predictions_top_k)]
    return args
