"""The within-task embedding store: each shard appends the batches it computed; merge reads.

One folder per shard, written by that shard alone (no locks: a shared file system, or copies
brought together for the merge)::

    STORE/shard-<I>-of-<N>/
        pack.f32           the rows of every batch this shard computed, raw little-endian,
                           appended in order (the embeddings: stays outside the bundle)
        settings.json, calls.jsonl, batches.jsonl, orders/<call>.i32
                           the index (kit/bundle/within.py), copied into the shard's run
                           folder and bundle under within/ when the shard ends

A batch already stored under the same key is not written again (content addressing: calls
that form the same batch share it, and a resumed shard skips what it stored). The pack is
append-only, so a shard holds one batch in memory. Size: ``rows x dim x 4`` bytes, plus about
200 bytes of index per batch and 4 bytes of order per text and shard.

``ShardStore`` writes one shard; ``MergedStore`` reads every shard's rows through the indexes
of the verified shard bundles (never the store's own copy) and checks each batch's sha256 as
it reads it; ``assemble`` gives a call's embeddings in the caller's order.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kit.bundle.within import (
    BATCHES,
    CALLS,
    FORMAT,
    ORDERS,
    SETTINGS,
    ShardIndex,
    first_diff,
    order_name,
)
from kit.errors import ExitCode, KitError
from kit.evaluate.shard.batches import bounds, settings_digest
from kit.fsio import atomic_write_bytes, dumps_json

PACK = "pack.f32"


def shard_folder(store: Path, index: int, count: int) -> Path:
    """Where shard ``index`` of ``count`` keeps its batches in ``store``."""
    return Path(store) / f"shard-{index}-of-{count}"


def _lines(path: Path) -> list[dict[str, Any]]:
    """The whole lines of a JSON-lines file (a line cut by a kill is dropped)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


class ShardStore:
    """The append-only store of one shard (see the module docstring)."""

    def __init__(self, store: Path, settings: dict[str, Any], index: int, count: int) -> None:
        self.folder = shard_folder(store, index, count)
        try:
            (self.folder / ORDERS).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise KitError(
                f"store {store} is not writable: {e.strerror or e}", ExitCode.OUTPUT
            ) from None
        self.settings = dict(settings)
        self.digest = settings_digest(self.settings)
        path = self.folder / SETTINGS
        if path.exists():
            old = json.loads(path.read_text())
            if old.get("digest") != self.digest:
                raise KitError(
                    f"{self.folder} holds batches made with other settings "
                    f"({first_diff(old.get('settings') or {}, self.settings)}); use a new store",
                    ExitCode.SHARDS,
                )
        else:
            record = {
                "format": FORMAT,
                "settings": self.settings,
                "digest": self.digest,
                "index": index,
                "count": count,
            }
            atomic_write_bytes(path, dumps_json(record).encode())
        self.keys = {r["key"] for r in _lines(self.folder / BATCHES)}
        self.calls = {r["call"] for r in _lines(self.folder / CALLS)}
        self._pack = open(self.folder / PACK, "ab")  # noqa: SIM115 - closed in close()
        self._batches = open(self.folder / BATCHES, "a", encoding="utf-8")  # noqa: SIM115
        self.written_bytes = 0

    def has_call(self, key: str) -> bool:
        return key in self.calls

    def put_batch(self, key: str, rows: Any) -> None:
        """Append one batch's rows (a 2-d float array) unless that key is stored already."""
        import numpy as np

        if key in self.keys:
            return
        array = np.ascontiguousarray(rows)
        data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        offset = self._pack.seek(0, os.SEEK_END)
        self._pack.write(data)
        self._pack.flush()
        line = {
            "key": key,
            "offset": offset,
            "rows": int(array.shape[0]),
            "dim": int(array.shape[1]),
            "dtype": array.dtype.str.lstrip("<>|="),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        self._batches.write(json.dumps(line, sort_keys=True) + "\n")
        self._batches.flush()
        self.keys.add(key)
        self.written_bytes += len(data)

    def put_call(self, record: dict[str, Any], order_bytes: bytes) -> None:
        """Record one encode call (after its batches) and the encoder's order for it."""
        atomic_write_bytes(self.folder / ORDERS / order_name(record["call"]), order_bytes)
        with open(self.folder / CALLS, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
        self.calls.add(record["call"])

    def index_files(self) -> dict[str, bytes]:
        """The index as the shard's bundle records it (names relative to ``within/``)."""
        files = {
            name: "".join(
                json.dumps(r, sort_keys=True) + "\n" for r in _lines(self.folder / name)
            ).encode()
            for name in (CALLS, BATCHES)
        }
        files[SETTINGS] = (self.folder / SETTINGS).read_bytes()
        for rec in _lines(self.folder / CALLS):
            name = order_name(rec["call"])
            files[f"{ORDERS}/{name}"] = (self.folder / ORDERS / name).read_bytes()
        return files

    def close(self) -> None:
        for f in (self._pack, self._batches):
            if not f.closed:
                f.flush()
                os.fsync(f.fileno())
                f.close()


def find_packs(stores: Iterable[Path], count: int) -> dict[int, Path]:
    """Each shard's pack in the given store folders (a store, or a shard's own folder)."""
    found: dict[int, Path] = {}
    for store in stores:
        for i in range(count):
            for folder in (shard_folder(store, i, count), Path(store)):
                if folder.name == f"shard-{i}-of-{count}" and (folder / PACK).is_file():
                    found.setdefault(i, folder / PACK)
    return found


class MergedStore:
    """Every shard's rows read together through their verified indexes: the merge's embeddings."""

    def __init__(self, indexes: list[ShardIndex], packs: Mapping[int, Path]) -> None:
        self.indexes = sorted(indexes, key=lambda s: s.index)
        self.packs = dict(packs)
        self.digest = self.indexes[0].digest
        self.home: dict[str, tuple[int, dict[str, Any]]] = {}
        for s in self.indexes:
            for key, rec in s.batches.items():
                self.home.setdefault(key, (s.index, rec))
        self._files: dict[int, Any] = {}
        self.read_bytes = 0

    def call(self, key: str) -> tuple[dict[str, Any], bytes] | None:
        """A call's record and its order bytes, from the first shard that recorded it."""
        for s in self.indexes:
            if key in s.calls:
                return s.calls[key], s.orders[key]
        return None

    def _read(self, key: str) -> Any:
        import numpy as np

        index, rec = self.home[key]
        path = self.packs.get(index)
        if path is None:
            raise KitError(
                f"no store holds shard {index}'s pack ({PACK}); give its folder with --store",
                ExitCode.NOT_FOUND,
            )
        f = self._files.get(index)
        if f is None:
            f = self._files[index] = open(path, "rb")  # noqa: SIM115 - closed in close()
        dtype = np.dtype(rec["dtype"]).newbyteorder("<")
        size = rec["rows"] * rec["dim"] * dtype.itemsize
        f.seek(rec["offset"])
        data = f.read(size)
        if len(data) != size or hashlib.sha256(data).hexdigest() != rec["sha256"]:
            raise KitError(
                f"{path}: batch {key[:12]} is truncated or altered (its sha256 differs from "
                "the shard bundle's record)",
                ExitCode.INTEGRITY,
            )
        self.read_bytes += size
        return np.frombuffer(data, dtype=dtype).reshape(rec["rows"], rec["dim"])

    def assemble(self, key: str) -> Any:
        """The call's embeddings in the caller's input order (one float array, n x dim)."""
        import numpy as np

        found = self.call(key)
        if found is None:
            raise KeyError(key)
        rec, order_bytes = found
        order = np.frombuffer(order_bytes, dtype="<i4").astype(np.int64)
        if rec["n"] and not np.array_equal(np.sort(order), np.arange(rec["n"])):
            raise KitError(f"the order of call {key[:12]} is not a permutation", ExitCode.INTEGRITY)
        out = None
        spans = bounds(rec["n"], rec["batch_size"])
        for (start, end), bkey in zip(spans, rec["batch_keys"], strict=True):
            rows = self._read(bkey)
            if rows.shape[0] != end - start:
                raise KitError(f"batch {bkey[:12]} has {rows.shape[0]} rows", ExitCode.INTEGRITY)
            if out is None:
                out = np.empty((rec["n"], rows.shape[1]), dtype=rows.dtype.newbyteorder("="))
            out[order[start:end]] = rows
        return out if out is not None else np.empty((0, 0), dtype=np.float32)

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()
