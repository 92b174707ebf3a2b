"""The edge where the kit talks to mteb: resolve names, load the model, run one task."""

from __future__ import annotations

import logging
import random
import warnings
from pathlib import Path
from typing import Any, cast

from kit.errors import ExitCode, KitError

_QUIET_LOGGERS = ("mteb", "datasets", "sentence_transformers", "transformers", "huggingface_hub")


def quiet_libraries() -> None:
    """Keep library chatter (superseded-task notices, cache messages) out of the user's way."""
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        import datasets

        datasets.disable_progress_bars()
        datasets.logging.set_verbosity_error()
    except ImportError:
        pass
    try:
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
    except (ImportError, AttributeError):
        pass


def _first_line(exc: BaseException) -> str:
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def resolve_tasks(tasks: tuple[str, ...], benchmark: str | None) -> list[Any]:
    """mteb task objects for the names or the benchmark, with mteb's suggestions on a typo."""
    import mteb

    if benchmark:
        try:
            return list(mteb.get_benchmark(benchmark).tasks)
        except KeyError as e:
            raise KitError(f"unknown benchmark: {_first_line(e)}", ExitCode.NOT_FOUND) from None
    out = []
    for name in tasks:
        try:
            out.append(mteb.get_task(name))
        except KeyError as e:
            raise KitError(f"unknown task: {_first_line(e)}", ExitCode.NOT_FOUND) from None
    return out


def resolve_device(device: str) -> str:
    import torch

    if device != "auto":
        if device == "cuda" and not torch.cuda.is_available():
            raise KitError("--device cuda asked for, but torch sees no CUDA GPU", ExitCode.USAGE)
        if device == "mps" and not torch.backends.mps.is_available():
            raise KitError("--device mps asked for, but MPS is not available", ExitCode.USAGE)
        return device
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def load_model(meta: Any, device: str, precision: str, offline: bool) -> Any:
    """Load a registered model through mteb (the loader ``mteb.get_model`` uses) and cast it."""
    from kit.evaluate import faults

    try:
        model = meta.load_model(device=device)
    except Exception as e:
        if (damaged := faults.corrupt_model(meta.name, meta.revision, e)) is not None:
            raise damaged from None
        if faults.is_resource_fault(e) or not isinstance(e, OSError | ValueError):
            raise
        if offline:
            raise KitError(
                f"model {meta.name}@{meta.revision} is not in the local HF cache "
                f"(offline); fetch it online first: repro-kit prefetch {meta.name}",
                ExitCode.DATA_MISSING,
            ) from None
        raise KitError(
            f"could not load model {meta.name}: {_first_line(e)}", ExitCode.NOT_FOUND
        ) from None
    return cast_precision(model, precision)


def cast_precision(model: Any, precision: str) -> Any:
    """Cast a loaded sentence-transformers model to fp16/bf16 (fp32: unchanged)."""
    import torch

    if precision != "fp32":
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        inner = getattr(model, "model", None)
        if inner is None or not hasattr(inner, "to"):
            raise KitError(
                f"--precision {precision} is supported for sentence-transformers models only",
                ExitCode.USAGE,
            )
        inner.to(dtype)
    return model


def model_dtype(model: Any) -> str | None:
    inner = getattr(model, "model", None)
    if inner is None:
        return None
    try:
        return str(next(inner.parameters()).dtype).replace("torch.", "")
    except (AttributeError, StopIteration, TypeError):
        return None


def set_seeds(seed: int) -> dict[str, int]:
    """Seed Python, NumPy and torch (CPU and every GPU); mteb's tasks keep their own seeds."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    return {"python": seed, "numpy": seed, "torch": seed}


def load_task_data(task: Any, offline: bool) -> None:
    """Load a task's data, turning a cache miss into a clear DATA_MISSING error."""
    ds = task.metadata.dataset
    try:
        task.load_data()
    except KitError:
        raise
    except Exception as e:
        from kit.evaluate import faults

        if faults.is_resource_fault(e):
            raise
        if (damaged := faults.corrupt_dataset(task.metadata.name, ds["path"], e)) is not None:
            raise damaged from None
        where = f"{ds.get('path')}@{ds.get('revision')}"
        if offline:
            raise KitError(
                f"{task.metadata.name}: dataset {where} is not in the local HF cache (offline); "
                f"fetch it online first: repro-kit prefetch --tasks {task.metadata.name}",
                ExitCode.DATA_MISSING,
            ) from None
        raise KitError(
            f"{task.metadata.name}: could not load dataset {where}: {_first_line(e)}",
            ExitCode.DATA_MISSING,
        ) from None


def run_task(
    model: Any,
    task: Any,
    staging: Path,
    encode_kwargs: dict[str, Any],
    prediction_folder: Path | None = None,
) -> Any:
    """Run one task through ``mteb.evaluate`` with results cached under ``staging``.

    ``prediction_folder``: where mteb writes the task's per-sample predictions (a folder only
    this task's runs use: mteb merges into the file it finds there).
    """
    import mteb

    if prediction_folder is not None:
        prediction_folder.mkdir(parents=True, exist_ok=True)
    try:
        result = mteb.evaluate(
            model,
            task,
            cache=mteb.ResultCache(staging),
            overwrite_strategy="only-missing",
            prediction_folder=prediction_folder,
            encode_kwargs=cast(Any, dict(encode_kwargs)),  # mteb's TypedDict
            show_progress_bar=False,
            co2_tracker=False,
            raise_error=True,
        )
    except KitError:
        raise
    except Exception as e:
        from kit.evaluate import faults

        if faults.is_resource_fault(e):
            raise
        raise KitError(
            f"{task.metadata.name}: mteb failed: {_first_line(e)}", ExitCode.EVALUATION_FAILED
        ) from None
    return result.task_results[0]


def mteb_version() -> str:
    import mteb

    return mteb.__version__


def file_main_score(path: Path) -> float:
    """A task's main score as mteb reads it back from the result file it wrote.

    mteb rounds the scores it writes (6 digits); the run record keeps this value, so it equals
    the score recomputed from the bundled file.
    """
    import mteb

    return float(mteb.TaskResult.from_disk(path).get_score())


def result_complete(path: Path, task: Any) -> bool:
    """Whether a task's result file parses and covers every split and subset mteb evaluates."""
    if not path.exists():
        return False
    try:
        from mteb.results import TaskResult

        result = TaskResult.from_disk(path)
        return not result.get_missing_evaluations(task)
    except Exception:
        return False
