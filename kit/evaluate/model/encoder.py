"""Everything that changes an embedding besides the weights, read from the loaded model.

In mteb's issue tracker the large score gaps (0.02 to 0.4) come from prompts and loader code,
not hardware. ``describe_encoder`` records the loader and its arguments, adapters, the
sentence-transformers pipeline (pooling, normalisation), similarity function, max sequence
length, dtype, tokenizer padding/truncation side and EOS handling, and the attention
implementation. ``record_prompts`` records the prompt text really used per task and role
(query / document), as sentence-transformers received it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


def _jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-safe rendering of loader arguments (callables and objects by name)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if depth > 4:
        return repr(value)[:200]
    if isinstance(value, dict):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_jsonable(v, depth + 1) for v in value]
        return sorted(items, key=json.dumps) if isinstance(value, set | frozenset) else items
    name = getattr(value, "__qualname__", None) or type(value).__qualname__
    module = getattr(value, "__module__", None) or type(value).__module__
    return f"{module}.{name}"


def _sentence_transformer(model: Any) -> Any:
    from sentence_transformers import SentenceTransformer

    inner = getattr(model, "model", None)
    if isinstance(inner, SentenceTransformer):
        return inner
    return model if isinstance(model, SentenceTransformer) else None


def _pipeline(st: Any) -> dict[str, Any]:
    modules = [type(m).__name__ for m in st]
    pooling = None
    for m in st:
        if type(m).__name__ == "Pooling":
            cfg = m.get_config_dict() if hasattr(m, "get_config_dict") else {}
            pooling = cfg.get("pooling_mode") or [
                k.removeprefix("pooling_mode_").removesuffix("_tokens")
                for k, v in cfg.items()
                if k.startswith("pooling_mode_") and v is True
            ]
    return {
        "modules": modules,
        "pooling": pooling,
        "normalize": "Normalize" in modules,
        "max_seq_length": getattr(st, "max_seq_length", None),
        "truncate_dim": getattr(st, "truncate_dim", None),
        "similarity_fn_name": getattr(st, "similarity_fn_name", None),
        "prompts": dict(getattr(st, "prompts", {}) or {}),
        "default_prompt_name": getattr(st, "default_prompt_name", None),
    }


def _tokenizer(st: Any) -> dict[str, Any] | None:
    tok = getattr(st, "tokenizer", None)
    if tok is None:
        return None
    return {
        "class": type(tok).__name__,
        "padding_side": getattr(tok, "padding_side", None),
        "truncation_side": getattr(tok, "truncation_side", None),
        "eos_token": getattr(tok, "eos_token", None),
        "add_eos_token": getattr(tok, "add_eos_token", None),
        "pad_token": getattr(tok, "pad_token", None),
        "do_lower_case": getattr(tok, "do_lower_case", None),
    }


def _transformer(st: Any) -> tuple[Any, dict[str, Any]]:
    first = st[0] if len(st) else None
    auto = getattr(first, "auto_model", None) or getattr(first, "model", None)
    config = getattr(auto, "config", None)
    adapters = None
    peft = getattr(auto, "peft_config", None)
    if isinstance(peft, dict) and peft:
        adapters = {
            str(name): {
                "type": str(getattr(c, "peft_type", "")),
                "base_model": getattr(c, "base_model_name_or_path", None),
                "r": getattr(c, "r", None),
                "target_modules": _jsonable(getattr(c, "target_modules", None)),
            }
            for name, c in peft.items()
        }
    return auto, {
        "architecture": (getattr(config, "architectures", None) or [None])[0],
        "attn_implementation": getattr(config, "_attn_implementation", None),
        "adapters": adapters,
    }


def describe_encoder(model: Any, loader: dict[str, Any]) -> dict[str, Any]:
    """The embedding-relevant settings of a loaded mteb model (see the module docstring).

    ``loader`` says how it was loaded (mteb's loader function and arguments, or the folder).
    """
    record: dict[str, Any] = {"loader": _jsonable(loader), "wrapper": type(model).__qualname__}
    st = _sentence_transformer(model)
    if st is None:
        record["note"] = "not a sentence-transformers model: pipeline settings not introspected"
        return record
    record.update(_pipeline(st))
    record["tokenizer"] = _tokenizer(st)
    auto, transformer = _transformer(st)
    record.update(transformer)
    try:
        record["dtype"] = str(next(auto.parameters()).dtype).replace("torch.", "")
    except (AttributeError, StopIteration, TypeError):
        record["dtype"] = None
    return record


def registry_loader(meta: Any) -> dict[str, Any]:
    """mteb's loader function and its arguments for a registered model."""
    loader = getattr(meta, "loader", None)
    return {
        "source": "mteb registry",
        "function": _jsonable(loader),
        "kwargs": _jsonable(dict(getattr(meta, "loader_kwargs", None) or {})),
    }


def folder_loader(folder: str, plain_transformers: bool) -> dict[str, Any]:
    """How a local folder or hub snapshot was loaded (as bare mteb loads it)."""
    return {
        "source": "model folder",
        "function": "sentence_transformers.SentenceTransformer",
        "kwargs": {"model_name_or_path": folder, "local_files_only": True},
        "wrapper": "mteb.models.SentenceTransformerEncoderWrapper",
        "plain_transformers": plain_transformers,
        **(
            {"note": "no modules.json: sentence-transformers built Transformer + mean pooling"}
            if plain_transformers
            else {}
        ),
    }


@dataclass
class PromptLog:
    """Prompts seen per role ("query", "document", or "none" when mteb gave no role)."""

    roles: dict[str, list[str | None]] = field(default_factory=dict)

    def add(self, role: str, prompt: str | None) -> None:
        seen = self.roles.setdefault(role, [])
        if prompt not in seen:
            seen.append(prompt)

    def to_json(self) -> dict[str, Any]:
        return {r: (p[0] if len(p) == 1 else p) for r, p in sorted(self.roles.items())}


@contextlib.contextmanager
def record_prompts(model: Any) -> Iterator[PromptLog]:
    """Record the prompt text sentence-transformers really prepends, per role, in the block.

    The role is what mteb's wrapper chose (``encode_query``/``encode_document`` or plain
    ``encode``); the text is the ``prompt`` given, else the named or default prompt of the
    model (sentence-transformers' own rule). Models that are not sentence-transformers
    record nothing (an empty log).
    """
    log = PromptLog()
    st = _sentence_transformer(model)
    if st is None:
        yield log
        return
    role = ["none"]
    original_encode = st.encode
    originals = {n: getattr(st, n) for n in ("encode_query", "encode_document") if hasattr(st, n)}

    def encode(*args: Any, **kwargs: Any) -> Any:
        prompt = kwargs.get("prompt")
        if prompt is None:
            name = kwargs.get("prompt_name") or st.default_prompt_name
            prompt = (st.prompts or {}).get(name) if name else None
        log.add(role[0], prompt)
        return original_encode(*args, **kwargs)

    def with_role(name: str, fn: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            role[0] = name
            try:
                return fn(*args, **kwargs)
            finally:
                role[0] = "none"

        return call

    st.encode = encode
    for n, fn in originals.items():
        setattr(st, n, with_role(n.removeprefix("encode_"), fn))
    try:
        yield log
    finally:
        for n in ("encode", *originals):
            st.__dict__.pop(n, None)
