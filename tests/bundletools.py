"""Edit real run folders into other, still self-consistent ones (for tests that need them);
read a bundle's manifest and signature.

A bundle's records must agree (verify's consistency step): renaming a model renames it in
run.json, the result folder and model_meta.json; a fanned-out run gives every task the splits,
subsets, type and main metric mteb defines for it.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

from kit.bundle.archive import read_bundle_archive
from kit.runfolder import model_as_path


def bundle_with_cli(run_dir: Path, dest: Path, hf: Path, key: Path | None = None) -> Path:
    """`repro-kit bundle RUN -o DEST [--sign KEY]` in a subprocess; DEST."""
    from tests.support import run_kit

    args = ["bundle", str(run_dir), "-o", str(dest)] + (["--sign", str(key)] if key else [])
    proc = run_kit(args, hf)
    assert proc.returncode == 0, proc.stderr
    return dest


def manifest_and_signature(bundle: Path) -> tuple[bytes, str]:
    """A bundle's manifest.json bytes and its armored signature."""
    members = read_bundle_archive(bundle)
    return members["manifest.json"], members["manifest.json.sig"].decode()


def rename_model(run_dir: Path, name: str, revision: str | None = None) -> None:
    """Make the run folder ``run_dir`` a run of model ``name`` (at ``revision``) throughout."""
    run = json.loads((run_dir / "run.json").read_text())
    revision = revision or run["resolved"]["revision"]
    old_dir = run["results_dir"]
    new_dir = f"results/{model_as_path(name)}/{revision}"
    run["resolved"].update(model=name, revision=revision)
    run["options"]["model"] = name
    if run.get("model"):
        run["model"].update(name=name, revision_requested=revision, revision_loaded=revision)
    run["results_dir"] = new_dir
    for t in run["tasks"]:
        t["result_file"] = t["result_file"].replace(old_dir, new_dir, 1)
    (run_dir / new_dir).parent.mkdir(parents=True, exist_ok=True)
    shutil.move(run_dir / old_dir, run_dir / new_dir)
    meta_path = run_dir / new_dir / "model_meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        meta.update(name=name, revision=revision)
        meta_path.write_text(json.dumps(meta, indent=4))
    (run_dir / "run.json").write_text(json.dumps(run, indent=2))


def fan_out(
    src: Path, dest: Path, tasks: list[Any], benchmark: str | None = None, template: str = ""
) -> Path:
    """A run folder of ``tasks`` (mteb task objects), each with a copy of a real result file.

    Task i scores ``round(0.5 + i / 200, 6)`` on every split and subset mteb evaluates for it;
    run.json records mteb's type, main metric and splits, and that score.
    """
    run = json.loads((src / "run.json").read_text())
    base = next(t for t in run["tasks"] if not template or t["name"] == template)
    raw = json.loads((src / base["result_file"]).read_text())
    entry = next(iter(raw["scores"].values()))[0]
    results = dest / run["results_dir"]
    results.mkdir(parents=True)
    for extra in ("model_meta.json", "run_settings.jsonl"):
        if (src / run["results_dir"] / extra).exists():
            shutil.copy(src / run["results_dir"] / extra, results / extra)
    entries = []
    for i, task in enumerate(tasks):
        name, score = task.metadata.name, round(0.5 + i / 200, 6)
        r = copy.deepcopy(raw)
        r["task_name"] = name
        r["scores"] = {
            split: [{**entry, "hf_subset": s, "main_score": score} for s in task.hf_subsets]
            for split in task.eval_splits
        }
        (results / f"{name}.json").write_text(json.dumps(r, indent=2))
        t = copy.deepcopy(base)
        t.update(
            name=name,
            type=task.metadata.type,
            main_metric=task.metadata.main_score,
            eval_splits=list(task.eval_splits),
            main_score=score,
            result_file=f"{run['results_dir']}/{name}.json",
        )
        if "predictions" in t:  # the copied result file has no predictions of its own
            t["predictions"] = {"kind": None, "member": None, "reason": "a fanned-out copy"}
        entries.append(t)
    run["tasks"] = entries
    run["resolved"]["tasks"] = [t["name"] for t in entries]
    run["resolved"]["benchmark"] = benchmark
    (dest / "run.json").write_text(json.dumps(run, indent=2))
    shutil.copy(src / "environment.json", dest / "environment.json")
    return dest
