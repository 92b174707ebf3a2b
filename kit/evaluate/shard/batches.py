"""Within-task sharding, the pure part: the encoder's own batches, who computes each, the keys.

sentence-transformers embeds one ``encode`` call in batches of its own making
(``SentenceTransformer._inference``): it orders the inputs by ``np.argsort`` of their negated
lengths (characters for text; numpy's default sort, not stable, so ties fall where numpy's
SIMD dispatch puts them), interleaves that order when the model flattens its inputs, and cuts
it into runs of ``batch_size``. Each batch is padded to its own longest input, and on a CPU in
fp32 an embedding's last bits depend on that batch (composition and padded length). Splitting
the batches, not the inputs, between shards is therefore bit-identical to one machine.

Batches are numbered per task across its encode calls, in the order the task makes them
(``first`` = how many batches the task's earlier calls had); batch ``g`` belongs to shard
``g mod N``. Every shard sees every call and computes every order, so no shard needs to talk
to another.

Keys (sha256, hex): ``settings_digest`` over what must be equal for two embeddings to be equal
bit for bit (model digest, batch size, dtype, device kind, library versions, CPU dispatch);
``batch_key`` over the settings digest, the resolved prompt and route, and the batch's texts in
order (content addressing: two calls that form the same batch share it); ``call_key`` over the
settings digest, the task, the prompt type and the call's texts in order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kit.bundle.within import FORMAT


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def _texts_into(h: Any, texts: Iterable[str]) -> None:
    for text in texts:
        raw = text.encode("utf-8", "surrogatepass")
        h.update(len(raw).to_bytes(8, "little"))
        h.update(raw)


def settings_digest(settings: Mapping[str, Any]) -> str:
    """sha256 over the canonical JSON of the settings every shard must share."""
    return hashlib.sha256(FORMAT.encode() + b"\0" + _canonical(dict(settings))).hexdigest()


def texts_digest(texts: Iterable[str]) -> str:
    """sha256 over texts in order (length-prefixed UTF-8, so no separator can collide)."""
    h = hashlib.sha256()
    _texts_into(h, texts)
    return h.hexdigest()


def batch_key(settings: str, route: Mapping[str, Any], texts: Sequence[str]) -> str:
    """The content address of one batch: settings digest, prompt and route, texts in order."""
    h = hashlib.sha256(b"batch\0" + settings.encode() + b"\0" + _canonical(dict(route)) + b"\0")
    _texts_into(h, texts)
    return h.hexdigest()


def call_key(settings: str, call: Mapping[str, Any], texts_sha256: str) -> str:
    """The address of one encode call as mteb makes it (task, prompt type, options, texts)."""
    blob = _canonical({"settings": settings, "call": dict(call), "texts": texts_sha256})
    return hashlib.sha256(b"call\0" + blob).hexdigest()


def bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """(start, end) of each batch over ``n`` inputs in the encoder's order."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    return [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]


def owner(global_index: int, count: int) -> int:
    """The shard that computes batch ``global_index`` of a task (round robin)."""
    return global_index % count


@dataclass(frozen=True)
class CallPlan:
    """One encode call split into the encoder's batches, and which of them shard ``index`` owns."""

    n: int
    batch_size: int
    first: int  # global number of this call's first batch within the task
    count: int  # N
    index: int  # I

    @property
    def batches(self) -> list[tuple[int, int]]:
        return bounds(self.n, self.batch_size)

    def owners(self) -> list[int]:
        return [owner(self.first + b, self.count) for b in range(len(self.batches))]

    def mine(self) -> list[int]:
        """Local batch numbers this shard computes."""
        return [b for b, o in enumerate(self.owners()) if o == self.index]
