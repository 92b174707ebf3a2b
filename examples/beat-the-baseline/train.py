"""Fine-tune a sentence-transformers model on an MTEB STS task's train split, and record how.

sentence-transformers' trainer with CoSENT loss (a ranking loss on the pairs' gold scores),
seeded; the split comes from the Hugging Face cache at the revision mteb pins (offline works
once it is cached). The model folder is written under a temporary name beside OUT and renamed
to OUT when complete, with ``training.json`` (kit.training.record) beside the weights.

Settings come from the environment (run.sh passes them):

    OUT         the model folder to write (must not exist)
    MODEL       the model to start from (sentence-transformers/all-MiniLM-L6-v2), at the
                revision mteb pins for it (a folder: as it is)
    TRAIN_TASK  the mteb STS task whose train split is the data (STSBenchmark)
    EPOCHS      epochs over the split (1); STEPS, when set, stops after that many steps
    LR          learning rate (2e-5); BATCH_SIZE (16); SEED (42); DEVICE (cpu | cuda | auto)
    CODE        the training code's git repository, recorded (default: this file's folder)

Two runs with the same settings on the same machine write the same files (README, "Beat the
baseline": determinism): nothing in the folder depends on the time, so it keeps one digest.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path


def setting(name: str, default: str) -> str:
    return os.environ.get(name) or default


def main() -> int:
    out = Path(os.environ["OUT"]).absolute()
    if out.exists():
        print(f"train.py: {out} exists; choose a new OUT", file=sys.stderr)
        return 2
    model_name = setting("MODEL", "sentence-transformers/all-MiniLM-L6-v2")
    task_name = setting("TRAIN_TASK", "STSBenchmark")
    seed = int(setting("SEED", "42"))
    device = setting("DEVICE", "cpu")
    code = Path(setting("CODE", str(Path(__file__).resolve().parent)))

    # The cache and offline settings of a repro-kit.toml above the working folder (the
    # quickstart writes one), as every repro-kit command applies them; set before the HF
    # libraries are imported, since they read them then. The environment wins.
    from kit.machine.project import apply_project_config

    apply_project_config(os.environ, Path.cwd())

    import mteb
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
        losses,
    )

    from kit.training.record import TrainingRecorder, load_split

    task = mteb.get_task(task_name)
    dataset = task.metadata.dataset
    rows, data = load_split(
        dataset["path"], revision=dataset["revision"], split="train", mteb_task=task.metadata.name
    )
    missing = {"sentence1", "sentence2", "score"} - set(rows.column_names)
    if missing:
        print(
            f"train.py: {task_name}'s train split lacks {sorted(missing)}: not STS", file=sys.stderr
        )
        return 2
    rows = rows.select_columns(["sentence1", "sentence2", "score"])
    revision = None if Path(model_name).is_dir() else mteb.get_model_meta(model_name).revision
    recorder = TrainingRecorder(
        data=[data],
        seed=seed,
        code=code,
        base_model=model_name + (f"@{revision}" if revision else ""),
        loss_function="CoSENTLoss",
    )
    on_cpu = device == "cpu"
    model = SentenceTransformer(model_name, revision=revision, device="cpu" if on_cpu else None)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.train-", dir=out.parent))
    args = SentenceTransformerTrainingArguments(
        output_dir=str(scratch / "trainer"),
        num_train_epochs=float(setting("EPOCHS", "1")),
        max_steps=int(setting("STEPS", "-1")),
        per_device_train_batch_size=int(setting("BATCH_SIZE", "16")),
        learning_rate=float(setting("LR", "2e-5")),
        warmup_steps=0.1,
        seed=seed,
        data_seed=seed,
        logging_steps=10,
        save_strategy="no",
        report_to="none",
        use_cpu=on_cpu,
        disable_tqdm=True,
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=rows,
        loss=losses.CoSENTLoss(model),
        callbacks=[recorder.callback()],
    )
    t0 = time.perf_counter()
    try:
        trainer.train()
        # The card's "Training Time" is wall time: left out, so one seed gives one digest.
        model.model_card_data._training_start_time = None
        folder = scratch / "model"
        model.save(str(folder))
        recorder.write(folder)
        folder.rename(out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    rec = recorder.record()
    losses_ = [x["loss"] for x in rec["loss"]]
    loss = f"; loss {losses_[0]:.4f} -> {losses_[-1]:.4f}" if losses_ else ""
    print(
        f"trained {rec['steps']} steps x batch {rec['batch_size']} on {data['dataset']} "
        f"{data['split']} ({data['rows']} rows) in {time.perf_counter() - t0:.0f} s{loss}; "
        f"wrote {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
