"""Why do two runs' numbers differ? Most likely causes first.

In mteb's issue tracker the large gaps (0.02 to 0.4) come from prompts and model-loading
code, not hardware; so the order is: prompts really used, model files (content digest, with
the first differing file), the loader and embedding pipeline settings, dataset revisions and
files, then precision, versions and hardware. When both sides hold a task's per-sample
predictions, ``samples`` says per (split, subset) how many samples moved and the largest
changes (``kit.verify.predcompare``): whether a mean moved, and which samples did.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kit.bundle.manifest import collect_run_files, task_entries
from kit.bundle.scores import ScoreError
from kit.errors import ExitCode, KitError
from kit.verify.predcompare import SidePredictions, compare_tasks
from kit.verify.verified import VerifiedBundle, require_verified

# (label, getter, why it moves numbers) in order of how often it explains a difference.
_RUN = "run"
_ENV = "env"


def _get(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)
    return d


def _dataset_fingerprints(run: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for t in run.get("tasks", []):
        ds = t.get("dataset") or {}
        out[t["name"]] = {
            "revision": ds.get("revision_loaded"),
            "files": {c.get("config"): c.get("files_sha256") for c in ds.get("configs", [])},
        }
    return out


FIELDS: list[tuple[str, str, tuple[str, ...], str]] = [
    ("model revision", _RUN, ("model", "revision_loaded"), "different weights"),
    ("model file hashes", _RUN, ("model", "files_sha256"), "different weights or tokenizer"),
    ("precision", _RUN, ("encode", "precision"), "fp16/bf16 change embeddings"),
    ("model dtype", _RUN, ("encode", "dtype"), "fp16/bf16 change embeddings"),
    ("mteb version", _RUN, ("mteb_version",), "task definitions and metrics change"),
    ("sentence-transformers", _ENV, ("packages", "sentence-transformers"), "pooling/encode"),
    ("transformers", _ENV, ("packages", "transformers"), "tokenizer and model code"),
    ("torch", _ENV, ("torch", "version"), "kernels"),
    ("device", _RUN, ("encode", "device"), "GPU vs CPU kernels"),
    ("GPU", _ENV, ("torch", "gpus"), "kernels"),
    ("CUDA", _ENV, ("torch", "cuda_build"), "kernels"),
    ("cuDNN", _ENV, ("torch", "cudnn_version"), "kernels"),
    ("TF32 matmul", _ENV, ("torch", "tf32_matmul"), "reduced matmul precision"),
    ("float32 matmul precision", _ENV, ("torch", "float32_matmul_precision"), "matmul precision"),
    ("batch size", _RUN, ("encode", "batch_size"), "padding and kernel choice"),
    ("seeds", _RUN, ("seeds",), "sampling in classification/clustering"),
    ("deterministic algorithms", _ENV, ("torch", "deterministic_algorithms"), "kernels"),
    ("numpy", _ENV, ("packages", "numpy"), "linear algebra"),
    ("scikit-learn", _ENV, ("packages", "scikit-learn"), "classifiers/clustering in tasks"),
    ("scipy", _ENV, ("packages", "scipy"), "correlations"),
    ("datasets", _ENV, ("packages", "datasets"), "data loading"),
    ("torch threads", _ENV, ("torch", "num_threads"), "reduction order on CPU"),
    ("CPU", _ENV, ("hardware", "cpu_model"), "SIMD kernels"),
    ("Python", _ENV, ("python", "version"), "rarely"),
    ("OS", _ENV, ("os", "platform"), "rarely"),
    ("container image", _RUN, ("container", "image_id"), "software stack"),
]


def _predictions(run: dict[str, Any], read: Callable[[str], bytes]) -> dict[str, SidePredictions]:
    """The predictions members of a side's complete tasks (``read``: a member's bytes)."""
    out = {}
    for t in run.get("tasks", []):
        block = t.get("predictions") or {}
        if t.get("status") == "complete" and block.get("member") and block.get("kind"):
            out[t["name"]] = SidePredictions(
                block["kind"], block.get("top_k"), read(block["member"])
            )
    return out


def bundle_side(bundle: VerifiedBundle) -> dict[str, Any]:
    """One side of a comparison from a verified bundle (nothing is read again)."""
    return {
        "path": str(bundle.path),
        "run": bundle.run,
        "env": bundle.environment,
        "tasks": bundle.tasks,
        "predictions": _predictions(bundle.run, lambda name: bundle.members[name]),
    }


def load_side(path: Path) -> dict[str, Any]:
    """run, environment and recomputed task scores of a run folder or a bundle.

    A bundle is verified first (unsigned accepted: compare trusts no signer) and refused with
    the first failing check's code.
    """
    path = Path(path)
    if path.is_file():
        from kit.signing.policy import AcceptUnsigned

        return bundle_side(require_verified(path, AcceptUnsigned(None), "refusing to compare"))
    if not path.is_dir():
        raise KitError(f"{path} not found", ExitCode.NOT_FOUND)
    run, env, members = collect_run_files(path)
    try:
        tasks = task_entries(run, members)
    except ScoreError as e:
        raise KitError(f"{path}: {e}", ExitCode.SCORES) from None
    try:
        preds = _predictions(run, lambda name: (path / name).read_bytes())
    except OSError as e:
        raise KitError(
            f"{path}: predictions unreadable: {e.strerror or e}", ExitCode.NOT_FOUND
        ) from None
    return {"path": str(path), "run": run, "env": env, "tasks": tasks, "predictions": preds}


# Embedding settings (run.json model.embedding, kit/evaluate/model/encoder.py).
SETTINGS: list[tuple[str, str]] = [
    ("loader", "loader function and arguments"),
    ("prompts", "the model's own prompts"),
    ("default_prompt_name", "prompt applied when mteb gives none"),
    ("pooling", "pooling"),
    ("normalize", "normalisation"),
    ("similarity_fn_name", "similarity function"),
    ("max_seq_length", "truncation of long texts"),
    ("truncate_dim", "embedding truncation (Matryoshka)"),
    ("tokenizer", "padding side, EOS and lower-casing"),
    ("attn_implementation", "attention kernel"),
    ("adapters", "PEFT/LoRA adapters"),
    ("modules", "sentence-transformers pipeline"),
]


def _prompt_diffs(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    pa = {t["name"]: t.get("prompts") for t in a.get("tasks", []) if t.get("prompts") is not None}
    pb = {t["name"]: t.get("prompts") for t in b.get("tasks", []) if t.get("prompts") is not None}
    out = []
    for task in sorted(set(pa) & set(pb)):
        for role in sorted(set(pa[task]) | set(pb[task])):
            va, vb = pa[task].get(role), pb[task].get(role)
            if va != vb:
                out.append(
                    {
                        "what": f"prompt: {task} ({role})",
                        "a": va,
                        "b": vb,
                        "why": "prompts move scores most (gaps of 0.02-0.4 in mteb issues)",
                    }
                )
    return out


def _model_diffs(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    from kit.runfolder import files_from_record, first_difference

    ma, mb = a.get("model") or {}, b.get("model") or {}
    out = []
    if ma.get("digest") and mb.get("digest") and ma["digest"] != mb["digest"]:
        try:
            first = first_difference(
                files_from_record(ma.get("files") or []), files_from_record(mb.get("files") or [])
            )
        except (KeyError, TypeError, ValueError):
            first = None
        out.append(
            {
                "what": "model files (content digest)" + (f": {first}" if first else ""),
                "a": ma["digest"],
                "b": mb["digest"],
                "why": "different weights, tokenizer or configuration",
            }
        )
    ea, eb = ma.get("embedding") or {}, mb.get("embedding") or {}
    for key, why in SETTINGS:
        if key in ea and key in eb and ea[key] != eb[key]:
            out.append({"what": f"embedding: {key}", "a": ea[key], "b": eb[key], "why": why})
    return out


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """The differences between two sides (``load_side``), most likely causes first."""
    diffs = _prompt_diffs(a["run"], b["run"]) + _model_diffs(a["run"], b["run"])
    da, db = _dataset_fingerprints(a["run"]), _dataset_fingerprints(b["run"])
    for task in sorted(set(da) & set(db)):
        if da[task] != db[task]:
            what = "revision" if da[task]["revision"] != db[task]["revision"] else "file hashes"
            diffs.append(
                {
                    "rank": 0,
                    "what": f"dataset {what}: {task}",
                    "a": da[task]["revision"],
                    "b": db[task]["revision"],
                    "why": "different data (same task name)",
                },
            )
    for label, where, path, why in FIELDS:
        va, vb = _get(a[where], *path), _get(b[where], *path)
        if va != vb:
            diffs.append({"rank": 0, "what": label, "a": va, "b": vb, "why": why})
    pa, pb = a["env"].get("packages", {}), b["env"].get("packages", {})
    other = sorted(k for k in set(pa) | set(pb) if pa.get(k) != pb.get(k))
    shown = {p[1] for _, w, p, _ in FIELDS if w == _ENV and p[0] == "packages"}
    other = [k for k in other if k not in shown]
    if other:
        diffs.append(
            {
                "rank": len(diffs) + 1,
                "what": f"{len(other)} other packages",
                "a": {k: pa.get(k) for k in other[:20]},
                "b": {k: pb.get(k) for k in other[:20]},
                "why": "rarely",
            }
        )
    for i, d in enumerate(diffs, 1):
        d["rank"] = i
    deltas = []
    for task in sorted(set(a["tasks"]) | set(b["tasks"])):
        sa = _get(a["tasks"], task, "main_score")
        sb = _get(b["tasks"], task, "main_score")
        deltas.append(
            {
                "task": task,
                "a": sa,
                "b": sb,
                "delta": (sb - sa) if sa is not None and sb is not None else None,
            }
        )
    samples = compare_tasks(a.get("predictions") or {}, b.get("predictions") or {})
    return {
        "a": a["path"],
        "b": b["path"],
        "differences": diffs,
        "tasks": deltas,
        "samples": samples,
    }
