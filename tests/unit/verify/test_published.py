"""The published references the kit ships: found by model, offline, with their source commit."""

from __future__ import annotations

import json

import pytest

from kit.errors import ExitCode, KitError
from kit.verify.reference import (
    load_reference,
    published_name,
    published_reference,
    shipped_models,
)

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
BGE = "BAAI/bge-small-en-v1.5"


def test_both_shipped_with_their_source_commit() -> None:
    assert shipped_models() == [BGE, MINILM]
    for model in (MINILM, BGE):
        data = json.loads(published_reference(model).read_text())
        assert data["model"] == model and len(data["results_commit"]) == 40
        assert data["results_repo"] == "embeddings-benchmark/results"


def test_published_resolves_against_the_bundles_model() -> None:
    ref = load_reference("published")
    assert ref.deferred and not ref.scores
    minilm = ref.resolved(MINILM)
    assert round(minilm.scores["STSBenchmark"], 6) == 0.820325
    assert (
        load_reference(f"published:{BGE}").scores["STSBenchmark"]
        == (ref.resolved(BGE).scores["STSBenchmark"])
    )
    assert published_name("published", MINILM) == published_reference(MINILM)
    assert published_name("ref.json", MINILM) is None


def test_a_model_without_a_shipped_reference_is_3_with_the_way_to_make_one() -> None:
    with pytest.raises(KitError) as e:
        load_reference("published").resolved("alice/bge-small-ft")
    assert e.value.code == ExitCode.NOT_FOUND
    assert "repro-kit reference alice/bge-small-ft --results-repo DIR -o FILE" in e.value.message
