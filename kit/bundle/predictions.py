"""mteb's per-sample predictions as bundle evidence: the strict bounded reader and the binding.

mteb 2.x writes ``<Task>_predictions.json`` when ``mteb.evaluate(..., prediction_folder=)``
is given: ``{"mteb_model_meta": {...}, SUBSET: {SPLIT: PAYLOAD}}``, the payload's shape set by
the task type (``KINDS``; README "Predictions"). A run folder and a bundle keep that file
byte for byte as ``predictions/<Task>.json.gz`` (gzip -6, mtime 0), or cut to the top K
documents per query (``top_k_payload``). Read from a bundle it is hostile: ``read_predictions``
bounds the compressed and decompressed size before parsing, parses strictly
(``jsonread.parse``: no NaN, no duplicate keys, bounded depth) and checks every payload's shape
and types, refusing with one line (SCHEMA). A ``Binding`` records what the per-row lists line
up with (dataset, revision, split, subset, row count, sha256 of the ordered inputs and of the
gold labels): STS, pair classification and classification lists match the data by row order
only; ``check_binding`` refuses data that differs (PREDICTIONS_UNBOUND).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from kit.bundle.jsonread import JsonRefused, parse
from kit.errors import ExitCode, KitError

KINDS = (
    "sts",
    "pair_classification",
    "classification",
    "retrieval",
    "clustering",
    "clustering_legacy",
    "bitext_mining",
)
MAX_COMPRESSED = 64 * 1024**2  # one .json.gz member
MAX_JSON_BYTES = 64 * 1024**2  # its decompressed JSON (about 2 s of CPU to parse and check)
MAX_NAME = 512  # a subset, split, query or document id
_STS_LISTS = ("cosine_scores", "manhattan_distances", "euclidean_distances")
_PAIR_LISTS = (*_STS_LISTS, "similarity_scores", "dot_scores")


class PredictionsError(KitError):
    """Refused predictions: one line and an exit code (SCHEMA unless said otherwise)."""

    def __init__(self, message: str, code: ExitCode = ExitCode.SCHEMA) -> None:
        super().__init__(message, code)


def unbound(message: str) -> PredictionsError:
    """Predictions that do not line up with the data here (PREDICTIONS_UNBOUND)."""
    return PredictionsError(message, ExitCode.PREDICTIONS_UNBOUND)


@dataclass(frozen=True)
class TaskPredictions:
    """A checked predictions file: who made it and each (subset, split) payload."""

    model_name: str
    model_revision: str | None
    payloads: dict[tuple[str, str], Any]


def gzip_member(data: bytes) -> bytes:
    """``data`` as a deterministic gzip member (level 6, mtime 0)."""
    return gzip.compress(data, 6, mtime=0)


def gunzip_bounded(data: bytes, limit: int = MAX_JSON_BYTES) -> bytes:
    """Decompress one gzip member, refusing more than ``limit`` bytes of output."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(data, limit + 1)
    except zlib.error as e:
        raise PredictionsError(f"not a valid gzip member ({e})") from None
    if len(out) > limit:
        raise PredictionsError(f"decompresses to more than {limit} bytes")
    if not d.eof or d.unused_data:
        raise PredictionsError("truncated gzip member or bytes after it")
    return out


def read_predictions(
    data: bytes, kind: str, *, compressed: bool = True, max_json_bytes: int = MAX_JSON_BYTES
) -> TaskPredictions:
    """Parse and check one predictions file of task type ``kind`` (bounded, strict)."""
    if kind not in KINDS:
        raise PredictionsError(f"unknown task type {kind!r}")
    if compressed:
        if len(data) > MAX_COMPRESSED:
            raise PredictionsError(f"larger than {MAX_COMPRESSED} bytes compressed")
        data = gunzip_bounded(data, max_json_bytes)
    try:
        doc = parse(data, max_bytes=max_json_bytes, c_numbers=True)
    except JsonRefused as e:
        raise PredictionsError(str(e)) from None
    obj = _obj(doc, "the file")
    meta = _obj(obj.get("mteb_model_meta"), "mteb_model_meta")
    name, rev = meta.get("model_name"), meta.get("revision")
    if not isinstance(name, str) or not (rev is None or isinstance(rev, str)) or len(meta) != 2:
        raise PredictionsError("mteb_model_meta must be {model_name: str, revision: str|null}")
    payloads: dict[tuple[str, str], Any] = {}
    for subset, splits in obj.items():
        if subset == "mteb_model_meta":
            continue
        _name(subset, "subset")
        for split, payload in _obj(splits, f"subset {subset[:40]!r}").items():
            _name(split, "split")
            _CHECKS[kind](payload, f"{subset[:40]}/{split[:40]}")
            payloads[(subset, split)] = payload
    if not payloads:
        raise PredictionsError("no subset holds predictions")
    return TaskPredictions(name, rev, payloads)


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PredictionsError(f"{what} must be an object")
    return value


def _name(value: str, what: str) -> None:
    if not value or len(value) > MAX_NAME:
        raise PredictionsError(f"{what} name is empty or longer than {MAX_NAME}")


def _finite(values: Iterable[Any]) -> bool:
    try:
        return all(map(math.isfinite, values))
    except OverflowError:  # an integer beyond a float's range
        return False


def _floats(value: Any, where: str) -> int:
    if not isinstance(value, list) or not value:
        raise PredictionsError(f"{where} must be a non-empty list of numbers")
    for x in value:
        if type(x) is not float and type(x) is not int:  # bool is not a score
            raise PredictionsError(f"{where} holds {type(x).__name__}, not a number")
    if not _finite(value):  # 1e999 parses to inf
        raise PredictionsError(f"{where} holds a number out of float range")
    return len(value)


def _same_lengths(payload: Any, keys: tuple[str, ...], optional: str | None, where: str) -> None:
    p = _obj(payload, where)
    allowed = set(keys) | ({optional} if optional else set())
    if set(p) - allowed or set(keys) - set(p):
        raise PredictionsError(f"{where}: keys must be {sorted(allowed)}")
    lengths = {_floats(p[k], f"{where}/{k}") for k in keys}
    if optional and p.get(optional) is not None:
        lengths.add(_floats(p[optional], f"{where}/{optional}"))
    if len(lengths) != 1:
        raise PredictionsError(f"{where}: score lists differ in length {sorted(lengths)}")


def _check_sts(payload: Any, where: str) -> None:
    _same_lengths(payload, _STS_LISTS, "similarity_scores", where)


def _check_pair(payload: Any, where: str) -> None:
    _same_lengths(payload, _PAIR_LISTS, None, where)


def _check_classification(payload: Any, where: str) -> None:
    if not isinstance(payload, list) or not payload:
        raise PredictionsError(f"{where} must be a non-empty list of experiments")
    lengths = set()
    for i, exp in enumerate(payload):
        if not isinstance(exp, list) or not exp:
            raise PredictionsError(f"{where}[{i}] must be a non-empty list of labels")
        kinds = {type(x) for x in exp}
        if not kinds <= {int, str, float} or (str in kinds and len(kinds) > 1):
            raise PredictionsError(f"{where}[{i}] labels must be all int, all str or numbers")
        if str not in kinds and not _finite(exp):
            raise PredictionsError(f"{where}[{i}] holds a number out of float range")
        if str in kinds and any(len(x) > MAX_NAME for x in exp):
            raise PredictionsError(f"{where}[{i}] holds a label longer than {MAX_NAME}")
        lengths.add(len(exp))
    if len(lengths) != 1:
        raise PredictionsError(f"{where}: experiments differ in length {sorted(lengths)}")


def _check_retrieval(payload: Any, where: str) -> None:
    for qid, docs in _obj(payload, where).items():
        _name(qid, "query id")
        for did, score in _obj(docs, f"{where}/{qid[:40]}").items():
            _name(did, "document id")
            if type(score) is not float and type(score) is not int:
                raise PredictionsError(f"{where}/{qid[:40]}: score of {did[:40]} is not a number")
        if not _finite(docs.values()):
            raise PredictionsError(f"{where}/{qid[:40]}: a score is out of float range")


def _ints_matrix(value: Any, where: str) -> None:
    if not isinstance(value, list) or not value:
        raise PredictionsError(f"{where} must be a non-empty list of assignments")
    for i, row in enumerate(value):
        if not isinstance(row, list) or not row or any(type(x) is not int for x in row):
            raise PredictionsError(f"{where}[{i}] must be a non-empty list of integers")
        if not _finite(row):
            raise PredictionsError(f"{where}[{i}] holds an integer out of range")


def _check_clustering(payload: Any, where: str) -> None:
    levels = _obj(payload, where)
    if not levels or any(not k.startswith("Level ") for k in levels):
        raise PredictionsError(f"{where}: keys must be 'Level N'")
    for level, rows in levels.items():
        _ints_matrix(rows, f"{where}/{level[:20]}")


def _check_clustering_legacy(payload: Any, where: str) -> None:
    if isinstance(payload, list) and payload and isinstance(payload[0], list):
        _ints_matrix(payload, where)
    else:
        _ints_matrix([payload], where)


def _check_bitext(payload: Any, where: str) -> None:
    for pair, rows in _obj(payload, where).items():
        if not isinstance(rows, list) or not rows:
            raise PredictionsError(f"{where}/{pair[:40]} must be a non-empty list")
        for row in rows:
            if not isinstance(row, dict) or set(row) != {"corpus_id", "score"}:
                raise PredictionsError(f"{where}/{pair[:40]}: rows must be {{corpus_id, score}}")
            score = row["score"]
            if type(row["corpus_id"]) is not int or type(score) not in (int, float):
                raise PredictionsError(f"{where}/{pair[:40]}: corpus_id int, score number")
            if not _finite((score, row["corpus_id"])):
                raise PredictionsError(f"{where}/{pair[:40]}: a number is out of range")


_CHECKS = {
    "sts": _check_sts,
    "pair_classification": _check_pair,
    "classification": _check_classification,
    "retrieval": _check_retrieval,
    "clustering": _check_clustering,
    "clustering_legacy": _check_clustering_legacy,
    "bitext_mining": _check_bitext,
}


def rows_sha256(rows: Iterable[Any]) -> str:
    """sha256 over one canonical JSON line per row, in order (the binding's hash rule)."""
    h = hashlib.sha256()
    for row in rows:
        line = json.dumps(row, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        h.update(line.encode("utf-8") + b"\n")
    return h.hexdigest()


@dataclass(frozen=True)
class Binding:
    """What one (split, subset) of predictions lines up with in the dataset."""

    dataset: str
    revision: str | None  # the revision really loaded
    split: str
    subset: str
    rows: int  # rows of the evaluated split (queries with a positive, for retrieval)
    inputs_sha256: str  # ordered texts (STS, pairs, classification) or ids (retrieval)
    gold_sha256: str  # ordered gold labels or scores; sorted qrels for retrieval
    extra: Mapping[str, Any]  # task parameters recompute depends on (k values, seed)

    def to_json(self) -> dict[str, Any]:
        """The binding as run.json and the manifest record it."""
        return {**asdict(self), "extra": dict(self.extra)}


_BOUND = ("dataset", "revision", "split", "subset", "rows", "inputs_sha256", "gold_sha256")


def check_binding(task: str, recorded: Mapping[str, Any], actual: Binding) -> None:
    """Refuse (PREDICTIONS_UNBOUND) when the data here differs from the recorded binding."""
    now = actual.to_json()
    for key in (*_BOUND, "extra"):
        if recorded.get(key) != now[key]:
            raise unbound(
                f"{task} {actual.split}/{actual.subset}: predictions were made on {key} "
                f"{_short(recorded.get(key))}, the data here has {_short(now[key])}"
            )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def payload_rows(kind: str, payload: Any) -> int | None:
    """How many rows a payload predicts (None where rows are not the unit)."""
    if kind in ("sts", "pair_classification"):
        return len(payload["cosine_scores"])
    if kind == "classification":
        return len(payload[0])
    if kind == "retrieval":
        return len(payload)
    return None  # clustering and bitext mining: checked against the replayed samples


def top_k_payload(
    payload: Mapping[str, Mapping[str, float]], k: int
) -> dict[str, dict[str, float]]:
    """Retrieval predictions cut to each query's best ``k`` (mteb's order: score, then id, desc)."""
    return {
        qid: dict(sorted(docs.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)[:k])
        for qid, docs in payload.items()
    }


def cut_file(data: bytes, k: int) -> bytes:
    """A retrieval predictions file (mteb's JSON) with every query cut to its top ``k``."""
    doc = json.loads(data)
    for subset, splits in doc.items():
        if subset != "mteb_model_meta":
            for split, payload in splits.items():
                splits[split] = top_k_payload(payload, k)
    return json.dumps(doc).encode("utf-8")
