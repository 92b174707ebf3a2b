"""One strict JSON reader for every record, result file, reference and ``--against`` input.

``json.loads`` accepts what a hostile file can use against a reader: nesting deep enough to
exhaust the stack, integers no float can hold, two values for one key (the last silently
wins), ``NaN``/``Infinity``, and any of UTF-8/16/32. ``loads_strict`` refuses each of these
with a ``KitError`` carrying the caller's exit code (SCHEMA for bundle members), never
another exception type.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.errors import ExitCode, KitError

MAX_DEPTH = 64  # arrays and objects nested in each other
MAX_BYTES = 256 * 1024**2  # one JSON document
MAX_INT_DIGITS = 308  # larger integers do not fit a float (10**308 < max float < 10**309)


class JsonRefused(ValueError):
    """Why a document was refused (without the name of the file: callers add it)."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)  # C speed; a key given twice makes it shorter than the pairs
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JsonRefused(f"duplicate key {key!r} in one object")
            seen.add(key)
    return out


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise JsonRefused("integer too large for a float")
    value = int(text)
    if not math.isfinite(float(value)):
        raise JsonRefused("integer too large for a float")
    return value


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonRefused(f"number {text[:40]} is out of float range")
    return value


def _no_constant(text: str) -> float:
    raise JsonRefused(f"{text} is not a JSON number")


def _nan_constant(text: str) -> float:
    return float(text)  # NaN, Infinity, -Infinity: mteb writes them for undefined metrics


def _depth(value: Any, limit: int) -> None:
    """Refuse nesting deeper than ``limit`` (iteratively: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                raise JsonRefused(f"nested deeper than {limit} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))


def parse(
    data: bytes | str,
    *,
    allow_nan: bool = False,
    max_bytes: int = MAX_BYTES,
    c_numbers: bool = False,
) -> Any:
    """The JSON value of ``data``; raises JsonRefused with a one-line reason.

    ``c_numbers``: numbers are parsed by the C parser, not checked one by one (about a third
    faster on a file of millions of scores): a float such as ``1e999`` becomes ``inf`` and an
    integer may exceed a float's range, so the caller must check every number it reads
    (``kit.bundle.predictions`` does). NaN/Infinity tokens are still refused.
    """
    constant = _nan_constant if allow_nan else _no_constant
    return _parse(data, constant, max_bytes, c_numbers)


@dataclass(frozen=True)
class ParsedJson:
    """One document parsed once, readable as ``parse`` gives it with or without NaN allowed.

    ``refused`` is the refusal with NaN/Infinity allowed; ``constant`` the first of them read
    before any refusal (``parse`` without NaN refuses there, with exactly its reason).
    """

    value: Any = None
    refused: str | None = None
    constant: str | None = None

    def get(self, *, allow_nan: bool = False) -> Any:
        """The value ``parse(data, allow_nan=allow_nan)`` gives, or its JsonRefused."""
        if not allow_nan and self.constant is not None:
            raise JsonRefused(f"{self.constant} is not a JSON number")
        if self.refused is not None:
            raise JsonRefused(self.refused)
        return self.value


def parse_once(data: bytes | str, *, max_bytes: int = MAX_BYTES) -> ParsedJson:
    """``data`` parsed once into a ``ParsedJson`` (its refusal kept, never raised)."""
    seen: list[str] = []

    def constant(text: str) -> float:
        if not seen:
            seen.append(text)
        return float(text)

    try:
        value = _parse(data, constant, max_bytes)
    except JsonRefused as e:
        return ParsedJson(None, str(e), seen[0] if seen else None)
    return ParsedJson(value, None, seen[0] if seen else None)


def _parse(
    data: bytes | str, constant: Callable[[str], float], max_bytes: int, c_numbers: bool = False
) -> Any:
    if len(data) > max_bytes:
        raise JsonRefused(f"larger than {max_bytes} bytes")
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise JsonRefused(f"not UTF-8 (byte {e.start})") from None
    else:
        text = data
    if text.startswith("\ufeff"):
        raise JsonRefused("starts with a byte order mark")
    numbers: dict[str, Any] = {} if c_numbers else {"parse_int": _int, "parse_float": _float}
    try:
        value = json.loads(text, object_pairs_hook=_pairs, parse_constant=constant, **numbers)
    except JsonRefused:
        raise
    except RecursionError:
        raise JsonRefused(f"nested deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as e:
        raise JsonRefused(f"not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    except (ValueError, OverflowError, MemoryError) as e:
        raise JsonRefused(f"not valid JSON ({type(e).__name__})") from None
    _depth(value, MAX_DEPTH)
    return value


def loads_strict(
    data: bytes | str,
    what: str,
    code: ExitCode = ExitCode.SCHEMA,
    *,
    allow_nan: bool = False,
    max_bytes: int = MAX_BYTES,
) -> Any:
    """``parse`` with a refusal raised as ``KitError("WHAT: reason", code)``."""
    try:
        return parse(data, allow_nan=allow_nan, max_bytes=max_bytes)
    except JsonRefused as e:
        raise KitError(f"{what}: {e}", code) from None


def read_json_file(path: Path, code: ExitCode = ExitCode.USAGE, *, allow_nan: bool = False) -> Any:
    """A user-given JSON file: missing is NOT_FOUND, unreadable or refused JSON is ``code``."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise KitError(f"{path}: larger than {MAX_BYTES} bytes", code)
        data = path.read_bytes()
    except FileNotFoundError:
        raise KitError(f"{path} not found", ExitCode.NOT_FOUND) from None
    except OSError as e:
        raise KitError(f"cannot read {path}: {e.strerror or e}", code) from None
    return loads_strict(data, str(path), code, allow_nan=allow_nan)
