"""`repro-kit evaluate`'s options in groups, each handing the command one typed value.

In the style of ``kit.cli.options.trust_options``: ``model_options`` (MODEL, --revision) passes
``model``, ``task_options`` (--benchmark, --tasks) ``tasks``, ``run_options`` (--output, the
encode settings, --offline, --overwrite, --allow-revision-mismatch) ``run``,
``shard_options`` (--shard, --shard-count, --within-tasks, --store) ``shard``,
``new_model_options`` (--model-name, --code, --allow-dirty, --release-date,
--training-datasets) ``new_model``, ``bundle_options`` (--bundle, --no-bundle, --sign,
--passphrase-env, --no-sign, --allow-unsigned) ``bundle``. The decorators are stacked in the
order of ``--help``.

``bundle`` is checked and its signer made as the command is called (before the evaluation: a
key problem is found in seconds, not after hours); the task selection and the shard are
checked after it, by ``TaskChoice.select`` and ``ShardChoice.spec``, so a command line with
several problems names the same one first as it always did.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from kit.cli.options import (
    SIGNING_KEY_ENV,
    Signer,
    default_signing_key,
    make_signer,
    split_tasks,
)
from kit.errors import ExitCode, KitError
from kit.evaluate.options import DEFAULT_TASKS, DEVICES, PRECISIONS

if TYPE_CHECKING:
    from kit.evaluate.shard.plan import ShardSpec

F = TypeVar("F", bound=Callable[..., Any])

SIGN_HELP_EVAL = (
    "Sign the bundle with this SSH key: a private key file, or a .pub whose key ssh-agent "
    f"holds (default: ${SIGNING_KEY_ENV})."
)


def _group(fn: Callable[..., Any], name: str, build: Callable[..., Any], params: list[Any]) -> Any:
    """``fn`` behind ``params`` (click decorators, in --help order), called with ``name`` set
    to ``build`` of the raw values (``build``'s parameters are the options' names)."""
    names = tuple(inspect.signature(build).parameters)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kw: Any) -> Any:
        kw[name] = build(**{n: kw.pop(n) for n in names})
        return fn(*args, **kw)

    out: Any = wrapper
    for param in reversed(params):
        out = param(out)
    return out


# -- model ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelChoice:
    """MODEL (None: not given) and --revision."""

    model: str | None
    revision: str | None


def model_options(fn: F) -> F:
    """Add the MODEL argument and --revision; pass ``model``."""
    return _group(
        fn,
        "model",
        ModelChoice,
        [
            click.argument("model", required=False),
            click.option("--revision", help="Model revision (default: the one mteb pins)."),
        ],
    )


# -- tasks ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskSelection:
    """The tasks to run (or a benchmark), and whether this is the embedded default job."""

    tasks: tuple[str, ...]
    benchmark: str | None
    default_job: bool


@dataclass(frozen=True)
class TaskChoice:
    """--benchmark and --tasks as given."""

    benchmark: str | None
    tasks: str | None

    def select(self, model: str | None) -> TaskSelection:
        """Check the two against each other; no model and no tasks is the default job."""
        names = split_tasks(self.tasks)
        if self.benchmark and names:
            raise KitError("give --benchmark or --tasks, not both", ExitCode.USAGE)
        if self.tasks is not None and not names:
            raise KitError("--tasks is empty", ExitCode.USAGE)
        default_job = model is None and not self.benchmark and not names
        return TaskSelection(DEFAULT_TASKS if default_job else names, self.benchmark, default_job)


def task_options(fn: F) -> F:
    """Add --benchmark and --tasks; pass ``tasks``."""
    return _group(
        fn,
        "tasks",
        TaskChoice,
        [
            click.option("--benchmark", help='An mteb benchmark, e.g. "MTEB(eng, v2)".'),
            click.option("--tasks", help="Comma-separated mteb task names."),
        ],
    )


# -- the run's settings --------------------------------------------------------------------------


@dataclass(frozen=True)
class RunChoice:
    """Where the run goes and the settings it encodes with."""

    output: Path | None
    batch_size: int
    device: str
    precision: str
    seed: int
    offline: bool
    overwrite: bool
    allow_revision_mismatch: bool
    no_predictions: bool = False
    predictions_top_k: int | None = None


def run_options(fn: F) -> F:
    """Add --output, --batch-size, --device, --precision, --seed, --offline, --overwrite,
    --allow-revision-mismatch, --no-predictions and --predictions-top-k; pass ``run``."""
    return _group(
        fn,
        "run",
        RunChoice,
        [
            click.option(
                "--output",
                "-o",
                type=click.Path(path_type=Path),
                help="Run folder (default: runs/<org__model>). Re-using it resumes.",
            ),
            click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True),
            click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True),
            click.option(
                "--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True
            ),
            click.option(
                "--seed",
                type=int,
                default=42,
                show_default=True,
                help="Seed for Python, NumPy and torch (mteb's tasks keep their own seeds).",
            ),
            click.option(
                "--offline", is_flag=True, help="Use only the local HF cache (HF_HUB_OFFLINE=1)."
            ),
            click.option("--overwrite", is_flag=True, help="Start afresh instead of resuming."),
            click.option(
                "--allow-revision-mismatch",
                is_flag=True,
                help="Accept a dataset revision other than mteb's pin (recorded in run.json).",
            ),
            click.option(
                "--no-predictions",
                is_flag=True,
                help="Do not keep mteb's per-sample predictions (verify --recompute needs them).",
            ),
            click.option(
                "--predictions-top-k",
                type=click.IntRange(min=1),
                metavar="K",
                help="Keep each retrieval query's best K documents only (default: all mteb "
                "writes); metrics that need more are then not recomputable.",
            ),
        ],
    )


# -- shard ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShardChoice:
    """--shard and --shard-count as given."""

    shard: str | None
    shard_count: int | None
    within_tasks: bool = False
    store: Path | None = None

    def spec(self, env: Mapping[str, str]) -> ShardSpec | None:
        """The shard to run (``auto``: from ``env``); None for an unsharded run."""
        from kit.evaluate.shard.plan import resolve_spec

        if self.within_tasks and self.shard is None:
            raise KitError("--within-tasks goes with --shard I/N or --shard auto", ExitCode.USAGE)
        if self.within_tasks != (self.store is not None):
            raise KitError(
                "--within-tasks and --store DIR go together (the shared folder where each "
                "shard stores its batches)",
                ExitCode.USAGE,
            )
        return resolve_spec(self.shard, self.shard_count, env)


def shard_options(fn: F) -> F:
    """Add --shard and --shard-count; pass ``shard``."""
    return _group(
        fn,
        "shard",
        ShardChoice,
        [
            click.option(
                "--shard",
                metavar="I/N|auto",
                help="Run only shard I of N (0-based), balanced by task cost; auto: from a "
                "Kubernetes Indexed Job (JOB_COMPLETION_INDEX) or a Slurm array "
                "(SLURM_ARRAY_TASK_ID).",
            ),
            click.option(
                "--shard-count",
                type=click.IntRange(min=1),
                help="N for --shard auto when the environment lacks it (Kubernetes: the Job's "
                "completions).",
            ),
            click.option(
                "--within-tasks",
                is_flag=True,
                help="Also split the largest tasks inside themselves: every shard computes its "
                "share of their encoder batches into --store; `repro-kit merge` scores them.",
            ),
            click.option(
                "--store",
                type=click.Path(path_type=Path),
                help="With --within-tasks: the shared folder where each shard stores its batches.",
            ),
        ],
    )


# -- a new model's metadata ----------------------------------------------------------------------


@dataclass(frozen=True)
class NewModelInfo:
    """What the kit records of a model mteb does not know: its name, code and metadata."""

    model_name: str | None
    code: Path | None
    allow_dirty: bool
    release_date: str | None
    training_datasets: tuple[str, ...]


def _new_model(
    model_name: str | None,
    code: Path | None,
    allow_dirty: bool,
    release_date: str | None,
    training_datasets: str | None,
) -> NewModelInfo:
    return NewModelInfo(model_name, code, allow_dirty, release_date, split_tasks(training_datasets))


def new_model_options(fn: F) -> F:
    """Add --model-name, --code, --allow-dirty, --release-date, --training-datasets; pass
    ``new_model``."""
    return _group(
        fn,
        "new_model",
        _new_model,
        [
            click.option(
                "--model-name",
                metavar="ORG/NAME",
                help="Name of a local model folder in results layouts (required unless its "
                "card names it).",
            ),
            click.option(
                "--code",
                type=click.Path(path_type=Path),
                help="Git repository of the training code: remotes, commit, branch, dirty state "
                "recorded.",
            ),
            click.option(
                "--allow-dirty",
                is_flag=True,
                help="Accept uncommitted changes in --code (recorded).",
            ),
            click.option(
                "--release-date",
                metavar="YYYY-MM-DD",
                help="A new model's release date (model_meta).",
            ),
            click.option(
                "--training-datasets",
                metavar="TASK,...",
                help="mteb task names a new model was trained on (model_meta; zero-shot marking).",
            ),
        ],
    )


# -- bundle and signing --------------------------------------------------------------------------


@dataclass(frozen=True)
class BundleChoice:
    """Whether and where to write the bundle, and its signer (checked, made)."""

    write: bool
    path: Path | None
    signer: Signer | None
    sign_error: str | None  # the key's error, accepted with --allow-unsigned
    allow_unsigned: bool
    key: Path | None = None  # the key file that signs (--sign or $REPRO_KIT_SIGNING_KEY)


def _bundle(
    bundle_path: Path | None,
    no_bundle: bool,
    key: Path | None,
    passphrase_env: str | None,
    no_sign: bool,
    allow_unsigned: bool,
) -> BundleChoice:
    if no_sign and key is not None:
        raise KitError("give --sign KEY or --no-sign, not both", ExitCode.USAGE)
    if no_bundle and (key is not None or bundle_path is not None):
        raise KitError(
            "--no-bundle: nothing to sign or write (drop --sign/--bundle)", ExitCode.USAGE
        )
    signer, sign_error, used = None, None, None
    if not no_bundle and not no_sign:
        used = key if key is not None else default_signing_key()
        try:  # before the evaluation: a key problem is found in seconds, not after hours
            signer = make_signer(key, passphrase_env)
        except KitError as e:
            if e.code != ExitCode.KEY_ERROR or not allow_unsigned:
                raise
            sign_error = e.message
    return BundleChoice(not no_bundle, bundle_path, signer, sign_error, allow_unsigned, used)


def bundle_options(fn: F) -> F:
    """Add --bundle, --no-bundle, --sign, --passphrase-env, --no-sign, --allow-unsigned; pass
    ``bundle``."""
    return _group(
        fn,
        "bundle",
        _bundle,
        [
            click.option(
                "--bundle",
                "bundle_path",
                type=click.Path(path_type=Path),
                help="Where to write the signed bundle (default: <output>.tar.gz beside the run "
                "folder).",
            ),
            click.option(
                "--no-bundle", is_flag=True, help="Stop at the run folder (bundle it later)."
            ),
            click.option(
                "--sign", "key", metavar="KEY", type=click.Path(path_type=Path), help=SIGN_HELP_EVAL
            ),
            click.option(
                "--passphrase-env", metavar="VAR", help="Read the key's passphrase from VAR."
            ),
            click.option(
                "--no-sign", is_flag=True, help=f"Do not sign, even if {SIGNING_KEY_ENV} is set."
            ),
            click.option(
                "--allow-unsigned",
                is_flag=True,
                help="If signing fails, still write the bundle, unsigned (exit 25 all the same).",
            ),
        ],
    )
