"""The training record: what a fine-tune wrote beside its weights (``training.json``).

``kit.training.record.TrainingRecorder`` writes it as canonical JSON (``kit.fsio.dumps_json``:
sorted keys, 2-space indent, one final newline) into the model folder: the seed, the library
versions, each training dataset with its revision, split, row count and content hash (and the
mteb task whose data it is), the steps, the batch size, the loss per logging step and the
training code's commit (schemas/training.schema.json). Being one of the model's files, the
content digest covers it; run.json records the parsed record under ``model.training``, and
``binding_problems`` (verify's consistency step) checks that its canonical bytes are exactly
the file the digested per-file list names. ``summary`` is the manifest's short form of it,
``describe`` one line for report and compare.
"""

from __future__ import annotations

from typing import Any

from kit.bundle import schemas
from kit.bundle.jsonread import JsonRefused, parse
from kit.errors import ExitCode, KitError
from kit.fsio import dumps_json, sha256_bytes
from kit.runfolder import TRAINING

FORMAT = "repro-kit/training"
FORMAT_VERSION = 1
_SOURCES_WITH_FOLDERS = ("local", "hub")


def parse_record(data: bytes, where: str) -> dict[str, Any]:
    """The record held in ``data`` (training.json's bytes); ``where`` names the file.

    Refused (SCHEMA) unless it parses with the strict reader, matches its schema and is in
    canonical form (what the kit's writer gives), since only then does the record run.json
    holds hash to the file the model digest lists.
    """
    try:
        record = parse(data)
    except JsonRefused as e:
        raise KitError(f"{where}: {e}", ExitCode.SCHEMA) from None
    problems = schemas.errors("training", record)
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        raise KitError(f"{where}: {problems[0]}{more}", ExitCode.SCHEMA)
    if canonical(record) != data:
        raise KitError(
            f"{where} is not in canonical form (sorted keys, 2-space indent, as "
            "kit.training.record.TrainingRecorder writes it): its hash would not be the record's",
            ExitCode.SCHEMA,
        )
    return record


def canonical(record: dict[str, Any]) -> bytes:
    """The bytes of ``record`` as the writer lays them down."""
    return dumps_json(record).encode("utf-8")


def named_tasks(record: dict[str, Any]) -> list[str]:
    """The mteb tasks the record's data entries name (sorted, once each)."""
    return sorted({d["mteb_task"] for d in record["data"] if d.get("mteb_task")})


def run_block(record: dict[str, Any]) -> dict[str, Any]:
    """run.json's ``model.training``: the file's name, its sha256 and the record itself."""
    return {"file": TRAINING, "sha256": sha256_bytes(canonical(record)), "record": record}


def binding_problems(run: dict[str, Any]) -> list[str]:
    """Why run.json's training record is not the training.json the model digest covers."""
    model = run.get("model")
    if not isinstance(model, dict):
        return []
    files = model.get("files")
    listed = (
        {f.get("path"): f.get("sha256") for f in files or [] if isinstance(f, dict)}
        if isinstance(files, list)
        else {}
    )
    block = model.get("training")
    if block is None:
        if TRAINING in listed and run.get("model_source") in _SOURCES_WITH_FOLDERS:
            return [f"the model's files hold {TRAINING}, but run.json does not record it"]
        return []
    if not valid_block(block):
        return [f"run.json's training record does not match the {TRAINING} schema"]
    sha = sha256_bytes(canonical(block["record"]))
    if TRAINING not in listed:
        return [f"run.json records a training record, but the model's files hold no {TRAINING}"]
    if listed[TRAINING] != sha or block.get("sha256") != sha:
        return [
            f"run.json's training record is not the {TRAINING} the model digest covers "
            f"(record sha256 {sha[:12]}…, file {str(listed[TRAINING])[:12]}…)"
        ]
    return []


def valid_block(block: Any) -> bool:
    """Whether run.json's ``model.training`` holds a record its schema accepts."""
    return (
        isinstance(block, dict)
        and isinstance(block.get("record"), dict)
        and not schemas.errors("training", block["record"])
    )


def summary(block: Any) -> dict[str, Any] | None:
    """The manifest's ``training``: what a reader needs without run.json (None: no valid
    record, which verify's consistency step reports)."""
    if not valid_block(block):
        return None
    rec = block["record"]
    losses = [x["loss"] for x in rec["loss"]]
    code = rec.get("code") or {}
    return {
        "sha256": block["sha256"],
        "seed": rec["seed"],
        "steps": rec["steps"],
        "batch_size": rec["batch_size"],
        "base_model": rec.get("base_model"),
        "data": [
            {k: d.get(k) for k in ("dataset", "revision", "split", "rows", "sha256", "mteb_task")}
            for d in rec["data"]
        ],
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "code_commit": code.get("commit"),
    }


def describe(info: dict[str, Any]) -> str:
    """One line of a manifest's ``training`` (or run.json's record, summarised first)."""
    s = summary(info) if "record" in info else info
    if s is None:
        return "not a valid training record"
    data = "; ".join(
        f"{d['dataset']}@{str(d.get('revision'))[:7]} {d['split']} ({d['rows']:,} rows, "
        f"sha256 {str(d['sha256'])[:12]}…)"
        for d in s["data"]
    )
    loss = ""
    if s.get("first_loss") is not None and s.get("last_loss") is not None:
        loss = f"; loss {s['first_loss']:.4g} -> {s['last_loss']:.4g}"
    code = f"; code {str(s['code_commit'])[:12]}" if s.get("code_commit") else "; code not recorded"
    return f"seed {s['seed']}, {s['steps']} steps x batch {s['batch_size']} on {data}{loss}{code}"
