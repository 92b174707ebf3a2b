"""Within-task sharding around mteb: the map encoder (a shard) and the reduce encoder (no model).

Map (``MapEncoder``): wraps mteb's ``SentenceTransformerEncoderWrapper``. mteb calls its
``encode(DataLoader, task_metadata=..., prompt_type=...)``; the wrapper names the call
(``call_key``: task, prompt type, options, texts) and lets mteb's own code run: it gathers the
texts, resolves the prompt, picks ``encode``/``encode_query``/``encode_document`` and calls
sentence-transformers, whose ``_inference`` (the one place that sorts and batches) is replaced
on that model instance by ``_inference`` below. That computes the encoder's order exactly as
sentence-transformers does (its own ``_input_length``, ``np.argsort``, interleave), cuts the
batches, runs the original ``_inference`` on each batch this shard owns (the very batch, same
composition and padding), stores it, and returns zeros for the rows of other shards: the task
goes on to its next call, and its score in the shard is meaningless (never recorded).

Reduce (``ReduceEncoder``): stands in for the model. ``encode`` gathers the texts as mteb's
wrapper does, finds the call in the merged store and returns the stored rows in the caller's
order (the same float32 array the model returned). ``similarity`` and
``similarity_pairwise`` are the model wrapper's own, given by the caller (no weights needed).

mteb is not imported here: the caller hands in mteb's objects.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from kit.errors import ExitCode, KitError
from kit.evaluate.shard.batches import CallPlan, batch_key, call_key, texts_digest
from kit.evaluate.shard.store import MergedStore, ShardStore

DUMMY_DIM = 1  # a model that does not say its dimension: the other shards' rows are this wide


def _texts(inputs: Any) -> list[str]:
    """The call's texts as mteb's wrapper gathers them (``_encode_batches``, text path)."""
    return [text for batch in inputs for text in batch["text"]]


def _call(task_metadata: Any, prompt_type: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    options = {k: v for k, v in sorted(kwargs.items()) if k != "show_progress_bar"}
    return {
        "task": task_metadata.name,
        "prompt_type": getattr(prompt_type, "value", prompt_type),
        "options": json.loads(json.dumps(options, default=repr)),
    }


def order_bytes(order: Any) -> bytes:
    """The encoder's order as the index stores it (int32, little-endian)."""
    import numpy as np

    if len(order) >= 2**31:
        raise KitError(
            "within-task sharding handles calls of fewer than 2^31 texts", ExitCode.USAGE
        )
    return np.asarray(order, dtype="<i4").tobytes()


def _record(
    ctx: dict[str, Any],
    route: dict[str, Any],
    order: bytes,
    batch_size: int,
    first: int,
    keys: list[str],
    mine: list[int],
) -> dict[str, Any]:
    """The line ``calls.jsonl`` keeps for one encode call (what the shard's bundle records)."""
    names = ("call", "task", "split", "subset", "seq", "prompt_type", "options", "texts_sha256")
    return {
        **{k: ctx[k] for k in names},
        "route": route,
        "n": len(order) // 4,
        "batch_size": batch_size,
        "first": first,
        "batch_keys": keys,
        "mine": mine,
        "order_sha256": hashlib.sha256(order).hexdigest(),
    }


class MapEncoder:
    """mteb's encoder, computing only shard ``index`` of ``count``'s batches (module docstring)."""

    def __init__(self, model: Any, store: ShardStore, index: int, count: int) -> None:
        st = getattr(model, "model", None)
        if st is None or not hasattr(st, "_inference") or not hasattr(st, "_input_length"):
            raise KitError(
                "within-task sharding needs a sentence-transformers model (the encoder's own "
                f"batches); {type(model).__name__} is not one",
                ExitCode.USAGE,
            )
        self._model, self._st, self.store = model, st, store
        self.index, self.count = index, count
        self._original = st._inference
        st._inference = self._inference  # this instance only; the class is untouched
        self._ctx: dict[str, Any] | None = None
        self._task: str | None = None
        self._next = 0  # global batch number within the current task
        self._seq = 0
        self.log: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:  # mteb_model_meta, similarity, model_prompts...
        return getattr(self._model, name)

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
        """mteb's call: run the wrapped model with the batching hook set for this call."""
        if task_metadata.name != self._task:
            self._task, self._next, self._seq = task_metadata.name, 0, 0
        texts = _texts(inputs)
        call = _call(task_metadata, prompt_type, kwargs)
        tsha = texts_digest(texts)
        ctx = {
            "call": call_key(self.store.digest, call, tsha),
            "texts_sha256": tsha,
            "texts": texts,
            "split": hf_split,
            "subset": hf_subset,
            "seq": self._seq,
            "inner_calls": 0,
            **call,
        }
        self._ctx = ctx
        try:
            out = self._model.encode(
                inputs,
                task_metadata=task_metadata,
                hf_split=hf_split,
                hf_subset=hf_subset,
                prompt_type=prompt_type,
                **kwargs,
            )
        finally:
            self._ctx = None
        if ctx["inner_calls"] != 1:
            raise KitError(
                f"{call['task']}: mteb's encoder made {ctx['inner_calls']} batching passes for "
                "one call (multi-process, distributed or per-batch encoding): within-task "
                "sharding needs exactly one",
                ExitCode.USAGE,
            )
        self._seq += 1
        return out

    def _inference(self, inputs: list, *, prompt: Any, batch_size: int, **kw: Any) -> Any:
        """sentence-transformers' ``_inference``, for this shard's batches only."""
        import torch

        ctx = self._ctx
        if ctx is None:  # a task run whole (not split) by this shard: the model as it is
            return self._original(inputs, prompt=prompt, batch_size=batch_size, **kw)
        if list(inputs) != ctx["texts"]:
            raise KitError(
                "the encoder was called with other texts than mteb gave it: within-task "
                "sharding needs mteb's sentence-transformers wrapper as it is",
                ExitCode.USAGE,
            )
        if kw.get("output_value") != "sentence_embedding":
            raise KitError("within-task sharding stores sentence embeddings only", ExitCode.USAGE)
        ctx["inner_calls"] += 1
        st = self._st
        order = self._order(inputs)
        route = {"prompt": prompt, **{k: v for k, v in kw.items() if k != "show_progress_bar"}}
        route = json.loads(json.dumps(route, default=repr, sort_keys=True))
        plan = CallPlan(len(inputs), batch_size, self._next, self.count, self.index)
        keys = [
            batch_key(self.store.digest, route, [inputs[i] for i in order[s:e]])
            for s, e in plan.batches
        ]
        resumed = self.store.has_call(ctx["call"])  # a resumed shard: this call is stored
        mine = [] if resumed else plan.mine()
        out: Any = None
        t0 = time.perf_counter()
        for b in mine:
            start, end = plan.batches[b]
            rows = self._original(
                [inputs[i] for i in order[start:end]],
                prompt=prompt,
                batch_size=batch_size,
                **{**kw, "show_progress_bar": False},
            )
            if out is None:
                out = torch.zeros(
                    (len(inputs), rows.shape[1]), dtype=rows.dtype, device=rows.device
                )
            out[torch.as_tensor(order[start:end])] = rows
            self.store.put_batch(keys[b], rows.detach().cpu().numpy())
        raw = order_bytes(order)
        record = _record(ctx, route, raw, batch_size, self._next, keys, mine)
        record["similarity_fn_name"] = getattr(st, "similarity_fn_name", None)
        if not resumed:
            self.store.put_call(record, raw)
        self.log.append(
            {
                "task": ctx["task"],
                "n": len(inputs),
                "batches": len(keys),
                "mine": len(mine),
                "encode_s": time.perf_counter() - t0,
            }
        )
        self._next += len(keys)
        if out is None:  # no batch of this call is ours
            dim = st.get_sentence_embedding_dimension() or DUMMY_DIM
            out = torch.zeros((len(inputs), dim), dtype=torch.float32)
        return out

    def _order(self, inputs: list) -> Any:
        """The encoder's order of ``inputs``, by sentence-transformers' own rule and methods."""
        import numpy as np

        st = self._st
        order = np.argsort([-st._input_length(x) for x in inputs])  # as _inference does
        if st._can_flatten_inputs():
            order = st._interleave_sorted_indices(order)
        return order

    def close(self) -> None:
        self._st._inference = self._original
        self.store.close()


class ReduceEncoder:
    """The model, replaced by the merged store: mteb runs the task once, with no encoding."""

    def __init__(
        self,
        store: MergedStore,
        meta: Any,
        similarity: Callable[[Any, Any], Any],
        similarity_pairwise: Callable[[Any, Any], Any],
    ) -> None:
        self.store = store
        self.mteb_model_meta = meta
        self._similarity, self._pairwise = similarity, similarity_pairwise
        self.served: list[dict[str, Any]] = []

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
        """The stored embeddings of this call, in mteb's order."""
        texts = _texts(inputs)
        call = _call(task_metadata, prompt_type, kwargs)
        key = call_key(self.store.digest, call, texts_digest(texts))
        try:
            out = self.store.assemble(key)
        except KeyError:
            raise KitError(
                f"{call['task']} {hf_split}/{hf_subset} ({call['prompt_type']}): no shard "
                f"recorded this encode call ({len(texts)} texts, options {call['options']}): "
                "the dataset or the options differ from the shards'",
                ExitCode.SHARDS,
            ) from None
        self.served.append({"task": call["task"], "n": len(texts), "call": key})
        return out

    def similarity(self, embeddings1: Any, embeddings2: Any) -> Any:
        return self._similarity(embeddings1, embeddings2)

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> Any:
        return self._pairwise(embeddings1, embeddings2)
