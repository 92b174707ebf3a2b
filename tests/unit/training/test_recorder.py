"""The training record's writer (kit/training/record.py): what it records, and when it refuses."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from kit.bundle.training import parse_record
from kit.errors import ExitCode, KitError
from kit.runfolder import TRAINING
from kit.training.record import TrainingRecorder, data_entry, library_versions

DATA = {"dataset": "a/b", "revision": "r1", "split": "train", "rows": 2, "sha256": "0" * 64,
        "mteb_task": None}  # fmt: skip


def git_repo(path: Path) -> Path:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@x", "PATH": "/usr/bin:/bin"}  # fmt: skip
    path.mkdir()
    (path / "train.py").write_text("print('train')\n")
    for args in (["init", "-q"], ["add", "train.py"], ["commit", "-q", "-m", "c"]):
        subprocess.run(["git", "-C", str(path), *args], check=True, env=env)
    return path


def trainer_state(seed: int = 42) -> tuple[SimpleNamespace, SimpleNamespace]:
    """transformers' TrainingArguments and TrainerState, as far as the recorder reads them."""
    args = SimpleNamespace(seed=seed, per_device_train_batch_size=16,
                           gradient_accumulation_steps=2, world_size=1, learning_rate=1e-4,
                           lr_scheduler_type=SimpleNamespace(value="linear"), max_steps=120,
                           optim=object())  # fmt: skip
    log = [{"step": 10, "loss": 6.5, "epoch": 0.1}, {"step": 20, "loss": 5.25},
           {"step": 20, "train_runtime": 90.0}]  # fmt: skip
    return args, SimpleNamespace(global_step=20, epoch=0.2, log_history=log)


def test_the_record_from_a_trainer_is_written_canonically(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "code")
    rec = TrainingRecorder(data=[DATA], code=repo, base_model="m", loss_function="CoSENTLoss")
    rec.from_trainer(*trainer_state())
    model = tmp_path / "model"
    model.mkdir()
    path = rec.write(model)
    assert path == model / TRAINING
    written = parse_record(path.read_bytes(), str(path))  # strict, schema, canonical
    assert written["seed"] == 42 and written["steps"] == 20
    assert written["batch_size"] == 32  # 16 per device x 2 accumulation steps x 1 device
    assert written["loss"] == [{"step": 10, "loss": 6.5}, {"step": 20, "loss": 5.25}]
    assert written["hyperparameters"]["lr_scheduler_type"] == "linear"
    assert written["hyperparameters"]["learning_rate"] == 1e-4
    assert isinstance(written["hyperparameters"]["optim"], str)
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    assert written["code"]["commit"] == head and written["code"]["dirty"] is False
    assert written["libraries"] == library_versions()
    assert "train_runtime" not in path.read_text()  # no wall time: one seed, one digest
    again = model / "again"
    again.mkdir()
    assert rec.write(again).read_bytes() == path.read_bytes()


def test_refusals(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "code")
    (repo / "train.py").write_text("changed\n")
    with pytest.raises(KitError, match="uncommitted changes") as e:
        TrainingRecorder(data=[DATA], code=repo)
    assert e.value.code == ExitCode.USAGE
    dirty = TrainingRecorder(data=[DATA], code=repo, allow_dirty=True, seed=1)
    assert dirty.code is not None and dirty.code["dirty"] and dirty.code["diff_sha256"]
    with pytest.raises(KitError, match="not a git repository") as e:
        TrainingRecorder(data=[DATA], code=tmp_path)
    assert e.value.code == ExitCode.USAGE
    early = TrainingRecorder(data=[DATA], seed=1)
    with pytest.raises(KitError, match="training has not ended"):
        early.record()
    with pytest.raises(KitError, match="ran with seed 7, the training record says 1"):
        early.from_trainer(*trainer_state(seed=7))
    early.trained(steps=1, batch_size=1, losses=[])
    with pytest.raises(KitError, match="save the model first") as e:
        early.write(tmp_path / "missing")
    assert e.value.code == ExitCode.NOT_FOUND
    no_data = TrainingRecorder(data=[], seed=1)
    no_data.trained(steps=1, batch_size=1, losses=[])
    with pytest.raises(KitError, match="should be non-empty") as e:
        no_data.record()
    assert e.value.code == ExitCode.SCHEMA


def test_the_data_hash_is_of_the_rows_not_the_files() -> None:
    from datasets import Dataset

    rows = {"sentence1": ["a", "b"], "sentence2": ["c", "d"], "score": [1.0, 4.5]}
    one = data_entry(Dataset.from_dict(rows), dataset="x", revision="r", split="train")
    same = data_entry(Dataset.from_dict(dict(rows)), dataset="x", revision="r", split="train")
    other = data_entry(Dataset.from_dict({**rows, "score": [1.0, 4.0]}), dataset="x",
                       revision="r", split="train")  # fmt: skip
    assert one == same and one["rows"] == 2 and one["columns"] == list(rows)
    assert other["sha256"] != one["sha256"]
    import hashlib
    import json

    pairs = zip(*rows.values(), strict=True)
    lines = "".join(json.dumps(list(r), separators=(",", ":")) + "\n" for r in pairs)
    assert one["sha256"] == hashlib.sha256(lines.encode()).hexdigest()
