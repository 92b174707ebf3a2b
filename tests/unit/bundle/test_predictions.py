"""The strict, bounded reader of mteb predictions files, the binding check and the top-k cut.

Each hostile document is refused with its reason and exit code here; how fast is measured by
benchmarks/hostile_json.py (its predictions cases), not asserted (a shared machine is noisy).
"""

from __future__ import annotations

import gzip
import json

import pytest

from kit.bundle.binding import task_kind
from kit.bundle.predictions import (
    MAX_COMPRESSED,
    MAX_JSON_BYTES,
    Binding,
    PredictionsError,
    check_binding,
    cut_file,
    gunzip_bounded,
    gzip_member,
    read_predictions,
    rows_sha256,
    top_k_payload,
)
from kit.errors import ExitCode

META = {"model_name": "org/m", "revision": "abc"}


def sts(n: int = 4) -> dict:
    lists = {k: [0.5] * n for k in ("cosine_scores", "manhattan_distances", "euclidean_distances")}
    return {"mteb_model_meta": META, "default": {"test": {**lists, "similarity_scores": None}}}


def gz(obj: object) -> bytes:
    return gzip_member(json.dumps(obj).encode())


def refused(data: bytes, kind: str, **kw: object) -> PredictionsError:
    with pytest.raises(PredictionsError) as e:
        read_predictions(data, kind, **kw)  # type: ignore[arg-type]
    return e.value


def test_reads_each_kind():
    p = read_predictions(gz(sts()), "sts")
    assert p.model_name == "org/m" and list(p.payloads) == [("default", "test")]
    ret = {"mteb_model_meta": META, "default": {"test": {"q1": {"d1": 0.9, "d2": 0.1}}}}
    assert read_predictions(gz(ret), "retrieval").payloads[("default", "test")]["q1"]["d1"] == 0.9
    cls = {"mteb_model_meta": META, "default": {"test": [[1, 2, 3], [1, 1, 3]]}}
    assert len(read_predictions(gz(cls), "classification").payloads[("default", "test")]) == 2
    clu = {"mteb_model_meta": META, "en": {"test": {"Level 0": [[0, 1, 1], [1, 0, 0]]}}}
    assert read_predictions(gz(clu), "clustering").payloads[("en", "test")]["Level 0"][1] == [
        1,
        0,
        0,
    ]
    bit = {"mteb_model_meta": META, "d": {"t": {"a-b": [{"corpus_id": 0, "score": 0.3}]}}}
    assert (
        read_predictions(gz(bit), "bitext_mining").payloads[("d", "t")]["a-b"][0]["corpus_id"] == 0
    )


HEAD = '{"mteb_model_meta": {"model_name": "m", "revision": null}, "default": {"test": '
REST = '"manhattan_distances": [1.0], "euclidean_distances": [1.0]}}}'


@pytest.mark.parametrize(
    ("doc", "why"),
    [
        (HEAD + '{"cosine_scores": [NaN], ' + REST, "NaN"),
        (HEAD + '{"cosine_scores": [Infinity], ' + REST, "Infinity"),
        (HEAD + '{"cosine_scores": [true], ' + REST, "bool"),
        (HEAD + '{"cosine_scores": ["0.5"], ' + REST, "str"),
        (HEAD + '{"cosine_scores": [1.0, 2.0], ' + REST, "differ in length"),
        (HEAD + '{"cosine_scores": [1e999], ' + REST, "out of float range"),
        (HEAD + '{"cosine_scores": [1' + "0" * 400 + "], " + REST, "out of float range"),
        (HEAD + '{"cosine_scores": [' + "9" * 5000 + "], " + REST, "not valid JSON"),
        (HEAD + '{"cosine_scores": [1.0], "cosine_scores": [2.0]}}}', "duplicate key"),
        (HEAD + '{"cosine_scores": [1.0], "other": [1.0], ' + REST, "keys must be"),
        ('{"mteb_model_meta": {"model_name": "m", "revision": null}}', "no subset"),
        ('{"mteb_model_meta": {"model_name": 3, "revision": null}, "d": {}}', "mteb_model_meta"),
        ("[]", "must be an object"),
        ('\ufeff{"a": 1}', "byte order mark"),
        ('{"a": [1, 2', "not valid JSON"),
    ],
)
def test_refuses_malformed(doc: str, why: str):
    err = refused(doc.encode(), "sts", compressed=False)
    assert why in err.message and err.code == ExitCode.SCHEMA


def test_refuses_deep_nesting():
    deep = b"[" * 200_000 + b"]" * 200_000
    assert "nested" in refused(gzip.compress(deep), "retrieval").message
    shallow_but_over = b'{"mteb_model_meta": ' + b"[" * 70 + b"]" * 70 + b"}"
    assert "nested deeper" in refused(gzip.compress(shallow_but_over), "sts").message


def test_refuses_a_bomb_before_parsing():
    bomb = gzip.compress(b" " * (MAX_JSON_BYTES + 1), 1, mtime=0)  # 64 MiB of spaces, ~65 KB
    assert len(bomb) < 1024**2
    assert "decompresses to more than" in refused(bomb, "sts").message
    assert "compressed" in refused(b"\0" * (MAX_COMPRESSED + 1), "sts").message
    assert "larger than" in refused(b" " * 101, "sts", compressed=False, max_json_bytes=100).message


def test_refuses_wrong_types_per_kind():
    assert (
        "Level"
        in refused(gz({"mteb_model_meta": META, "d": {"t": {"L0": [[1]]}}}), "clustering").message
    )
    bad = {"mteb_model_meta": META, "default": {"test": {"q": {"d": "0.5"}}}}
    assert "not a number" in refused(gz(bad), "retrieval").message
    flag = {"mteb_model_meta": META, "default": {"test": {"q": {"d": True}}}}
    assert "not a number" in refused(gz(flag), "retrieval").message
    mixed = {"mteb_model_meta": META, "default": {"test": [[1, "a"]]}}
    assert "labels" in refused(gz(mixed), "classification").message
    ragged = {"mteb_model_meta": META, "default": {"test": [[1, 2], [1]]}}
    assert "differ in length" in refused(gz(ragged), "classification").message
    long_id = {"mteb_model_meta": META, "default": {"test": {"q" * 600: {"d": 1.0}}}}
    assert "longer than" in refused(gz(long_id), "retrieval").message
    row = {"mteb_model_meta": META, "d": {"t": {"a-b": [{"corpus_id": 1.5, "score": 0.1}]}}}
    assert "corpus_id" in refused(gz(row), "bitext_mining").message
    assert "unknown task type" in refused(gz(sts()), "regression").message


def test_gunzip_refuses_trailing_and_truncated():
    data = gzip.compress(b"{}", mtime=0)
    with pytest.raises(PredictionsError):
        gunzip_bounded(data[:-3])
    with pytest.raises(PredictionsError):
        gunzip_bounded(data + b"x")
    with pytest.raises(PredictionsError):
        gunzip_bounded(b"not gzip at all")


def test_gzip_member_is_deterministic():
    assert gzip_member(b'{"a": 1}') == gzip_member(b'{"a": 1}')
    assert gunzip_bounded(gzip_member(b'{"a": 1}')) == b'{"a": 1}'


def _binding(**change: object) -> Binding:
    a = rows_sha256([["s1", "s2"], ["s3", "s4"]])
    base = dict(dataset="mteb/x", revision="rev1", split="test", subset="default", rows=2,
                inputs_sha256=a, gold_sha256=rows_sha256([1, 2]), extra={"seed": 42})  # fmt: skip
    return Binding(**{**base, **change})  # type: ignore[arg-type]


def test_binding_hash_is_order_sensitive_and_checked():
    assert rows_sha256([["s1", "s2"], ["s3", "s4"]]) != rows_sha256([["s3", "s4"], ["s1", "s2"]])
    b = _binding()
    check_binding("T", b.to_json(), b)
    for key, value in (("revision", "rev0"), ("rows", 3), ("inputs_sha256", "f" * 64)):
        with pytest.raises(PredictionsError) as e:
            check_binding("T", {**b.to_json(), key: value}, b)
        assert e.value.code == ExitCode.PREDICTIONS_UNBOUND
        assert f"predictions were made on {key} {value!r}" in e.value.message
    with pytest.raises(PredictionsError) as e:
        check_binding("T", b.to_json(), _binding(extra={"seed": 7}))
    assert "extra" in e.value.message


def test_top_k_keeps_mtebs_order():
    docs = {"d1": 0.1, "d2": 0.9, "d3": 0.5, "d4": 0.9}
    assert list(top_k_payload({"q": docs}, 2)["q"]) == ["d4", "d2"]  # ties: id descending
    doc = {"mteb_model_meta": META, "default": {"test": {"q": docs}}}
    cut = json.loads(cut_file(json.dumps(doc).encode(), 3))
    assert cut["mteb_model_meta"] == META and list(cut["default"]["test"]["q"]) == [
        "d4",
        "d2",
        "d3",
    ]


class AbsTask:
    pass


class AbsTaskClassification(AbsTask):
    pass


class AbsTaskRegression(AbsTaskClassification):
    pass


class AbsTaskRetrieval(AbsTask):
    pass


class AbsTaskReranking(AbsTaskRetrieval):
    pass


def test_task_kind_by_mtebs_class_names():
    assert task_kind(AbsTaskClassification()) == "classification"
    assert task_kind(AbsTaskRegression()) is None  # not recomputable: said, not guessed
    assert task_kind(AbsTaskReranking()) == "retrieval"
    assert task_kind(AbsTask()) is None
