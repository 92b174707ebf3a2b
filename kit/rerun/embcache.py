"""An embedding cache for re-runs that cannot change a score: it caches whole encode calls.

mteb's own ``CachedEmbeddingWrapper`` caches one vector per text and re-batches the texts it
has not seen. On a CPU in fp32 a text's embedding depends, in its last bits, on the padded
length of the batch it was encoded in, so that wrapper moves scores slightly (measured here:
STS12 by 3e-10 between a cold and a warm cache). A re-run must reproduce the claimed number
bit for bit, so this cache keys on the whole call instead: the model identity, the batch size
and encode options, the prompt type (and the task, when the model has task-specific prompts)
and every input text in order. A hit returns the very array the same call produced before; a
miss calls the model exactly as without the cache. When the model has no per-task prompts the
key leaves out the task, so two tasks that embed the same texts share the vectors.

Used only where re-computing is deterministic (see ``decide``); stored as ``KEY.npy`` files.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

from kit.fsio import atomic_write_bytes

_PLAIN = (str, int, float, bool, type(None))


def decide(
    device_kind: str, precision: str, in_container: bool, user_off: bool
) -> tuple[bool, str]:
    """Whether a re-run may use the cache, and why (plain data in, plain data out)."""
    if user_off:
        return False, "off: --no-embedding-cache"
    if in_container:
        return False, "off: the image's own evaluate runs the tasks (no cache hook there)"
    if device_kind != "cpu":
        return False, f"off: {device_kind} kernels may be non-deterministic; every call re-computed"
    if precision != "fp32":
        return (
            False,
            f"off: {precision} is not a deterministic setting here; every call re-computed",
        )
    return True, "on: deterministic fp32 CPU run at the bundle's batch size (whole-call cache)"


def _items_digest(dataset: Any) -> str | None:
    """sha256 over every input item in order, or None for non-text inputs (not cached)."""
    h = hashlib.sha256()
    for item in dataset:
        if not isinstance(item, dict) or not all(
            isinstance(v, _PLAIN) or (isinstance(v, list) and all(isinstance(x, _PLAIN) for x in v))
            for v in item.values()
        ):
            return None
        h.update(json.dumps(item, sort_keys=True, ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


class ExactEmbeddingCache:
    """Wraps an mteb encoder; ``encode`` answers repeated identical calls from ``folder``."""

    def __init__(self, model: Any, folder: Path, identity: dict[str, Any]) -> None:
        self._model = model
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.identity = identity
        prompts = getattr(model, "model_prompts", None)
        self.share_across_tasks = type(
            model
        ).__name__ == "SentenceTransformerEncoderWrapper" and not any((prompts or {}).values())
        self.hits = 0
        self.misses = 0
        self.uncacheable = 0

    def __getattr__(self, name: str) -> Any:  # mteb_model_meta, similarity, model, ...
        return getattr(self._model, name)

    def _key(self, inputs: Any, task_metadata: Any, prompt_type: Any, kwargs: dict) -> str | None:
        digest = _items_digest(inputs.dataset)
        if digest is None:
            return None
        key = {
            "identity": self.identity,
            "task": None if self.share_across_tasks else task_metadata.name,
            "prompt_type": getattr(prompt_type, "value", prompt_type),
            "loader_batch_size": getattr(inputs, "batch_size", None),
            "kwargs": {k: v for k, v in sorted(kwargs.items()) if k != "show_progress_bar"},
            "items": digest,
        }
        return hashlib.sha256(json.dumps(key, sort_keys=True, default=repr).encode()).hexdigest()

    def encode(
        self,
        inputs: Any,
        *,
        task_metadata: Any,
        hf_split: str,
        hf_subset: str,
        prompt_type: Any = None,
        **kwargs: Any,
    ) -> Any:
        """The model's ``encode``: the stored array on a hit, else the model's (then stored)."""
        import numpy as np

        key = self._key(inputs, task_metadata, prompt_type, kwargs)
        path = self.folder / f"{key}.npy" if key else None
        if path is not None and path.is_file():
            self.hits += 1
            array = np.load(path, allow_pickle=False)
            if (path.with_suffix(".torch")).exists():
                import torch

                return torch.from_numpy(array)
            return array
        out = self._model.encode(
            inputs,
            task_metadata=task_metadata,
            hf_split=hf_split,
            hf_subset=hf_subset,
            prompt_type=prompt_type,
            **kwargs,
        )
        if path is None:
            self.uncacheable += 1
            return out
        self.misses += 1
        is_torch = type(out).__module__.startswith("torch")
        array = out.detach().cpu().numpy() if is_torch else np.asarray(out)
        buf = io.BytesIO()
        np.save(buf, array, allow_pickle=False)
        if is_torch:
            atomic_write_bytes(path.with_suffix(".torch"), b"")
        atomic_write_bytes(path, buf.getvalue())
        return out

    def stats(self) -> dict[str, Any]:
        """Hits, misses and uncacheable calls so far, as recorded in the review."""
        return {
            "hits": self.hits,
            "misses": self.misses,
            "uncacheable": self.uncacheable,
            "shared_across_tasks": self.share_across_tasks,
        }
