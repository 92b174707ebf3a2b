"""Zero-shot per task (kit/verify/zeroshot.py), decided by mteb's own rules (mteb imported)."""

from __future__ import annotations

import pytest

from kit.verify.zeroshot import declared, meta_member, of_records, zero_shot

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def test_a_declared_task_and_its_similar_tasks_are_not_zero_shot() -> None:
    zs = zero_shot(["STSBenchmark"], None, ["STSBenchmark", "STSBenchmark.v2", "STS12", "BIOSSES"])
    assert zs.tasks == {
        "STSBenchmark": False,
        "STSBenchmark.v2": False,  # mteb's similar task
        "STS12": True,
        "BIOSSES": True,
    }
    assert zs.percentage == 50  # mteb's zero_shot_percentage: 2 of 4 tasks are out of domain
    assert zs.training is not None and "STSBenchmark" in zs.training


def test_the_parents_training_data_counts_through_adapted_from() -> None:
    """all-MiniLM-L6-v2's registry entry lists MS MARCO and NQ: a fine-tune of it is not
    zero-shot there even though it declares only STSBenchmark."""
    import mteb

    parent = mteb.get_model_meta(MINILM).training_datasets
    assert parent and "MSMARCO" in parent
    zs = zero_shot(["STSBenchmark"], MINILM, ["MSMARCO", "STSBenchmark", "SciFact"])
    assert zs.tasks == {"MSMARCO": False, "STSBenchmark": False, "SciFact": True}
    assert MINILM in zs.note
    alone = zero_shot(["STSBenchmark"], None, ["MSMARCO"])
    assert alone.tasks == {"MSMARCO": True}


def test_undeclared_training_data_is_unknown_never_zero_shot() -> None:
    zs = zero_shot(None, None, ["STSBenchmark"])
    assert zs.tasks == {"STSBenchmark": None} and zs.percentage is None
    assert zs.note.startswith("training data not declared")
    none_at_all = zero_shot([], None, ["STSBenchmark"])  # declared: trained on no mteb task
    assert none_at_all.tasks == {"STSBenchmark": True} and none_at_all.percentage == 100


@pytest.mark.parametrize(
    "meta, expected",
    [
        (
            {"training_datasets": ["STSBenchmark"], "adapted_from": MINILM},
            (["STSBenchmark"], MINILM),
        ),
        ({"training_datasets": {"NQ": ["train"]}, "adapted_from": ""}, (["NQ"], None)),
        ({"training_datasets": None}, (None, None)),
        ({"training_datasets": [1, 2]}, (None, None)),
        ("not an object", (None, None)),
    ],
)
def test_declared_reads_model_meta_json(meta: object, expected: tuple) -> None:
    assert declared(meta) == expected


def test_of_records_reads_the_model_meta_member() -> None:
    run = {"results_dir": "results/a__b/no_revision_available"}
    members = {meta_member(run): {"training_datasets": ["STSBenchmark"], "adapted_from": None}}
    zs = of_records(run, members.__getitem__, ["STSBenchmark"])
    assert zs.tasks == {"STSBenchmark": False}
    missing = of_records(run, {}.__getitem__, ["STSBenchmark"])  # no model_meta.json
    assert missing.tasks == {"STSBenchmark": None}
    assert missing.to_json()["training_datasets"] is None
