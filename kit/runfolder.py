"""The run folder and mteb's results layout: every file name and path rule, in one place.

A run folder (``repro-kit evaluate -o OUT``) and a bundle hold::

    run.json                  the command, options, per-task status/score/timing, provenance
    environment.json          hardware, software and settings
    mteb_model_meta.py        a new model's ModelMeta(...) entry for mteb's registry
    within/                   a within-task shard's index of the batches it stored
                              (kit/bundle/within.py; a merged bundle: shards/<I>/within/)
    results/<org__name>/<revision>/<Task>.json, model_meta.json, run_settings.jsonl
    predictions/<Task>.json.gz  mteb's per-sample predictions of the task (gzip, mtime 0)
    .staging/                 mteb's working cache while a task runs (run folder only)

``results/<org__name>/<revision>/`` is also the layout of MTEB's results repository and of
``mteb.ResultCache`` (``get_task_result_path``; a test holds this module to mteb's rule): the
name with ``/`` -> ``__`` and `` `` -> ``_``, and ``no_revision_available`` for a model
without a revision (a local folder).

The model content digest (``digest_of``) is defined here too, since producer and reviewer
must agree on it: every regular file of the model folder except paths with a component
starting with ``.`` (``.git/``, ``.gitattributes``, ``.cache/``: bookkeeping a folder and its
hub upload do not share), links to files followed; one line ``<sha256>  <size>  <path>\\n``
per file in the byte order of the UTF-8 paths; ``sha256:`` + the sha256 of all lines.
``kit.evaluate.model.identity`` hashes a folder by this rule.

A run inside a container writes under its mounts (``/out/...``); ``host_paths`` reads what
the host side said they are (``REPRO_KIT_HOST_OUTPUT``: the host folder of ``/out`` for a
plain ``docker run``; ``REPRO_KIT_HOST_PATHS``: the launcher's map), and ``shown_path``
prints a path as the host sees it.

Layer 0: imports nothing of the kit.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

RUN = "run.json"
ENVIRONMENT = "environment.json"
MTEB_ENTRY = "mteb_model_meta.py"
MODEL_META = "model_meta.json"
RUN_SETTINGS = "run_settings.jsonl"
RESULTS = "results"
STAGING = ".staging"
WITHIN = "within"
SHARDS = "shards"
PREDICTIONS = "predictions"
NO_REVISION = "no_revision_available"
#: The training record beside a fine-tuned model's weights (kit/bundle/training.py): one of
#: the model's files, so the content digest covers it.
TRAINING = "training.json"

RUN_FORMAT = "repro-kit/run"
RUN_FORMAT_VERSION = 1

#: What the kit writes at the top of a run folder (removed by ``evaluate --overwrite``).
KIT_FILES = (RUN, ENVIRONMENT, MTEB_ENTRY)
#: The records at the top of a bundle, beside the manifest and its signature.
RECORDS = (RUN, ENVIRONMENT)
#: mteb's files beside the task files in a revision folder.
RESULT_EXTRAS = (MODEL_META, RUN_SETTINGS)


def model_as_path(name: str) -> str:
    """mteb's folder name for a model (``org/name`` -> ``org__name``, spaces -> ``_``)."""
    return name.replace("/", "__").replace(" ", "_")


def revision_folder_name(revision: str | None) -> str:
    """The folder mteb files a revision under (``no_revision_available`` for none)."""
    return NO_REVISION if revision is None else str(revision)


def results_dir(model: str, revision: str | None) -> PurePosixPath:
    """``results/<org__name>/<revision>``: a model's results in a run folder or results repo."""
    return PurePosixPath(RESULTS, model_as_path(model), revision_folder_name(revision))


def result_file(folder: PurePosixPath | str, task: str) -> str:
    """The result file of ``task`` in a results folder, as a POSIX path."""
    return f"{PurePosixPath(folder).as_posix()}/{task}.json"


def predictions_member(task: str) -> str:
    """``predictions/<Task>.json.gz``: a task's predictions in a run folder and a bundle."""
    return f"{PREDICTIONS}/{task}.json.gz"


def staged_predictions(task: str) -> PurePosixPath:
    """``.staging/predictions/<Task>``: the folder only this task's mteb run writes into
    (mteb merges into an existing predictions file, so no two runs may share one)."""
    return PurePosixPath(STAGING, PREDICTIONS, task)


def default_output(model: str) -> Path:
    """``runs/<org__name>``: where ``evaluate`` writes when no ``--output`` is given."""
    return Path("runs") / model_as_path(model)


def is_run_folder(path: Path) -> bool:
    """Whether ``path`` is a folder holding a run record (a run folder, not a bundle)."""
    return path.is_dir() and (path / RUN).is_file()


# -- the model content digest ------------------------------------------------------------------


def digested(rel: str) -> bool:
    """Whether a file at the relative POSIX path ``rel`` counts toward the model digest."""
    return not any(part.startswith(".") for part in rel.split("/"))


def path_order(rel: str) -> bytes:
    """The sort key of digest lines: a path's UTF-8 bytes."""
    return rel.encode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class ModelFile:
    """One file of a model folder: relative POSIX path, size in bytes, sha256 hex."""

    path: str
    size: int
    sha256: str

    def line(self) -> str:
        """The file's line in the digested text."""
        return f"{self.sha256}  {self.size}  {self.path}\n"

    def to_json(self) -> dict[str, object]:
        """The file as run.json records it."""
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


def digest_of(files: list[ModelFile] | tuple[ModelFile, ...]) -> str:
    """The digest of a per-file list (recomputed by verify from run.json's list)."""
    ordered = sorted(files, key=lambda f: path_order(f.path))
    text = "".join(f.line() for f in ordered)
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def first_difference(
    expected: list[ModelFile] | tuple[ModelFile, ...],
    actual: list[ModelFile] | tuple[ModelFile, ...],
) -> str | None:
    """The first file (in path order) that differs, is missing or is extra, as a phrase."""
    want = {f.path: f for f in expected}
    have = {f.path: f for f in actual}
    for path in sorted(set(want) | set(have), key=path_order):
        a, b = want.get(path), have.get(path)
        if a is None:
            return f"{path} is extra"
        if b is None:
            return f"{path} is missing"
        if a.size != b.size:
            return f"{path} differs (size {b.size}, recorded {a.size})"
        if a.sha256 != b.sha256:
            return f"{path} differs (sha256 {b.sha256[:12]}…, recorded {a.sha256[:12]}…)"
    return None


def files_from_record(entries: list[dict[str, object]]) -> tuple[ModelFile, ...]:
    """The per-file list as run.json records it (already schema-checked)."""
    return tuple(ModelFile(str(e["path"]), int(str(e["size"])), str(e["sha256"])) for e in entries)


# -- host paths of a run inside a container ---------------------------------------------------

#: The host folder a plain ``docker run -v HOST:/out`` mounts at ``/out`` (the user sets it).
HOST_OUTPUT_ENV = "REPRO_KIT_HOST_OUTPUT"
CONTAINER_OUTPUT = "/out"
#: ``container evaluate``'s map of container paths to host paths (a JSON object).
HOST_PATHS_ENV = "REPRO_KIT_HOST_PATHS"
#: ``container evaluate``'s results checkout for the printed next step (a host path).
HOST_RESULTS_ENV = "REPRO_KIT_HOST_RESULTS"


def host_paths(environ: Mapping[str, str]) -> dict[str, str]:
    """Container path -> host path, from ``environ`` (empty outside a container run).

    A value that is not a JSON object of absolute paths is ignored: paths are then printed
    as the container sees them, which is never wrong, only less useful.
    """
    mapping: dict[str, str] = {}
    out = environ.get(HOST_OUTPUT_ENV, "").strip()
    if out:
        mapping[CONTAINER_OUTPUT] = out
    try:
        extra = json.loads(environ.get(HOST_PATHS_ENV) or "{}")
    except ValueError:
        extra = {}
    if isinstance(extra, dict):
        for inside, outside in extra.items():
            if isinstance(inside, str) and isinstance(outside, str) and inside.startswith("/"):
                mapping[inside] = outside
    return mapping


def on_host(path: str | Path, mapping: Mapping[str, str]) -> str | None:
    """``path`` (made absolute) with its longest mapped prefix replaced; None if none maps it."""
    p = PurePosixPath(os.path.abspath(path))
    for prefix in sorted(mapping, key=len, reverse=True):
        base = PurePosixPath(prefix)
        if p == base or base in p.parents:
            return str(PurePosixPath(mapping[prefix]) / p.relative_to(base))
    return None


def shown_path(path: str | Path, mapping: Mapping[str, str]) -> str:
    """How to print ``path``: as the host sees it when ``mapping`` covers it, else as given."""
    return (on_host(path, mapping) if mapping else None) or str(path)
