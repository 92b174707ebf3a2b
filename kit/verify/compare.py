"""Why do two runs' numbers differ? Most likely causes first.

In mteb's issue tracker the large gaps (0.02 to 0.4) come from prompts and model-loading
code, not hardware; so the order is: prompts really used, model files (content digest, with
the first differing file), the loader and embedding pipeline settings, dataset revisions and
files, then precision, versions and hardware. When both sides hold a task's per-sample
predictions, ``samples`` says per (split, subset) how many samples moved and the largest
changes (``kit.verify.predcompare``): whether a mean moved, and which samples did. A
training record (training.json) that differs is listed with the model files; each task says
whether each side's model is zero-shot on it (``kit.verify.zeroshot``). Every difference
carries a one-line text per side (``a_text``, ``b_text``: a file list in short, a loader as a
call); the values themselves stay whole for ``--json``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kit.bundle.jsonread import parse
from kit.bundle.manifest import collect_run_files, task_entries
from kit.bundle.scores import ScoreError
from kit.bundle.training import describe as describe_training
from kit.errors import ExitCode, KitError
from kit.verify.predcompare import SidePredictions, compare_tasks
from kit.verify.verified import VerifiedBundle, require_verified
from kit.verify.zeroshot import declared, meta_member, zero_shot

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
        "model_meta": _model_meta(bundle.run, bundle.records.json),
    }


def _model_meta(run: dict[str, Any], read_json: Callable[[str], Any]) -> Any:
    """The side's model_meta.json value (None: absent or refused)."""
    try:
        return read_json(meta_member(run))
    except (KeyError, OSError, ValueError):
        return None


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
    meta = _model_meta(run, lambda name: parse((path / name).read_bytes()))
    return {
        "path": str(path),
        "run": run,
        "env": env,
        "tasks": tasks,
        "predictions": preds,
        "model_meta": meta,
    }


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
                "a_text": ma["digest"][:19] + "…",
                "b_text": mb["digest"][:19] + "…",
                "why": "different weights, tokenizer or configuration",
            }
        )
    ta, tb = ma.get("training"), mb.get("training")
    if ta != tb:
        out.append(
            {
                "what": "training record (training.json)",
                "a": ta,
                "b": tb,
                "a_text": describe_training(ta) if isinstance(ta, dict) else "none",
                "b_text": describe_training(tb) if isinstance(tb, dict) else "none",
                "why": "how the weights were trained: data, steps, seed",
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
            diff = {"rank": 0, "what": label, "a": va, "b": vb, "why": why}
            if path == ("model", "files_sha256"):
                diff.update(file_changes(va, vb))
            diffs.append(diff)
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
        d.setdefault("a_text", one_line(d["a"]))
        d.setdefault("b_text", one_line(d["b"]))
    names = sorted(set(a["tasks"]) | set(b["tasks"]))
    za, zb = (zero_shot(*declared(side.get("model_meta")), names) for side in (a, b))
    deltas = []
    for task in names:
        sa = _get(a["tasks"], task, "main_score")
        sb = _get(b["tasks"], task, "main_score")
        deltas.append(
            {
                "task": task,
                "a": sa,
                "b": sb,
                "delta": (sb - sa) if sa is not None and sb is not None else None,
                "zero_shot_a": za.tasks.get(task),
                "zero_shot_b": zb.tasks.get(task),
            }
        )
    samples = compare_tasks(a.get("predictions") or {}, b.get("predictions") or {})
    return {
        "a": a["path"],
        "b": b["path"],
        "differences": diffs,
        "tasks": deltas,
        "samples": samples,
        "zero_shot": {"a": za.to_json(), "b": zb.to_json()},
    }


def file_changes(a: Any, b: Any) -> dict[str, str]:
    """A per-file hash map's difference in short: which files differ (the first few and a
    count) as ``what``, each side's file count as its text."""
    fa = a if isinstance(a, dict) else {}
    fb = b if isinstance(b, dict) else {}
    parts = []
    for label, names in (
        ("differ", sorted(k for k in set(fa) & set(fb) if fa[k] != fb[k])),
        ("only in A", sorted(set(fa) - set(fb))),
        ("only in B", sorted(set(fb) - set(fa))),
    ):
        if names:
            parts.append(f"{len(names)} {label} ({few(names)})")
    return {
        "what": "model file hashes: " + ("; ".join(parts) or "differ"),
        "a_text": f"{len(fa)} files",
        "b_text": f"{len(fb)} files",
    }


def few(names: list[str], n: int = 3) -> str:
    """The first ``n`` names and how many more."""
    more = f" and {len(names) - n} more" if len(names) > n else ""
    return ", ".join(names[:n]) + more


def one_line(value: Any, limit: int = 160) -> str:
    """A recorded value as one short line: a loader as a call, a map as ``k=v`` pairs, a
    list as its first items and a count; never a raw Python dict."""
    if isinstance(value, dict) and "function" in value and "kwargs" in value:
        kwargs: dict[str, Any] = value["kwargs"] if isinstance(value["kwargs"], dict) else {}
        args = ", ".join(f"{k}={one_line(v, 60)}" for k, v in sorted(kwargs.items()))
        text = f"{value['function']}({args})"
        text += f" via {value['wrapper']}" if value.get("wrapper") else ""
    elif isinstance(value, dict):
        text = ", ".join(f"{k}={one_line(v, 60)}" for k, v in sorted(value.items()))
    elif isinstance(value, list | tuple):
        text = few([one_line(v, 60) for v in value], 5)
    else:
        text = "-" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
