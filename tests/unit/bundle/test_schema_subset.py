"""The schema check without jsonschema decides every record exactly as jsonschema does."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from kit.bundle import schemas
from kit.bundle.schemas.subset import is_valid

_STRINGS = {
    "^[0-9a-f]{64}$": "ab" * 32,
    "^sha256:[0-9a-f]{64}$": "sha256:" + "cd" * 32,
    "^[0-9a-f]{40}([0-9a-f]{24})?$": "e" * 40,
}
_ODD = [None, 0, 1, -1, 3.0, 2.5, True, False, "", "x", "A_TOKEN", "ab" * 32, [], [1], {}, {"a": 1}]


def _sample(schema: Any, rng: random.Random, depth: int = 0) -> Any:
    """A value meant to be valid under ``schema`` (mostly is: mutations make the rest)."""
    if not isinstance(schema, dict) or depth > 8:
        return rng.choice(_ODD)
    if "const" in schema:
        return copy.deepcopy(schema["const"])
    if "enum" in schema:
        return copy.deepcopy(rng.choice(schema["enum"]))
    kind = schema.get("type")
    if kind is None:  # any value
        return copy.deepcopy(rng.choice(_ODD))
    kind = rng.choice(kind) if isinstance(kind, list) else kind
    if kind == "object":
        props = schema.get("properties", {})
        keys = set(schema.get("required", [])) | {k for k in props if rng.random() < 0.5}
        out = {k: _sample(props.get(k, {}), rng, depth + 1) for k in sorted(keys)}
        extra = schema.get("additionalProperties", True)
        if extra is not False and (rng.random() < 0.3 or len(out) < schema.get("minProperties", 0)):
            out[rng.choice(["HOME", "extra", "PATH"])] = _sample(extra, rng, depth + 1)
        return out
    if kind == "array":
        low = schema.get("minItems", 0)
        n = rng.randint(low, min(schema.get("maxItems", low + 2), low + 2 - min(depth // 3, 2)))
        return [_sample(schema.get("items", {}), rng, depth + 1) for _ in range(n)]
    if kind == "string":
        text = _STRINGS.get(schema.get("pattern", ""), "text")
        return text[: schema.get("maxLength", len(text))].ljust(schema.get("minLength", 0), "x")
    if kind == "integer":
        return schema.get("minimum", 0) + rng.randint(0, 3)
    if kind == "number":
        return schema.get("minimum", 0) + rng.random()
    return {"boolean": True, "null": None}.get(kind, rng.choice(_ODD))


def _mutate(value: Any, rng: random.Random) -> Any:
    """One random edit somewhere in ``value``: a key dropped or added, a value replaced."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(sorted(value))
        roll = rng.random()
        if roll < 0.25:
            del value[key]
        elif roll < 0.35:
            value["unexpected"] = rng.choice(_ODD)
        elif roll < 0.6:
            value[key] = copy.deepcopy(rng.choice(_ODD))
        else:
            value[key] = _mutate(value[key], rng)
        return value
    if isinstance(value, list) and value and rng.random() < 0.8:
        i = rng.randrange(len(value))
        if rng.random() < 0.3:
            del value[i]
        else:
            value[i] = _mutate(value[i], rng)
        return value
    return copy.deepcopy(rng.choice(_ODD))


@pytest.mark.parametrize("name", schemas.NAMES)
def test_valid_and_invalid_records_decided_as_jsonschema_decides(name: str) -> None:
    schema = schemas.load(name)
    validator = Draft202012Validator(schema)
    rng = random.Random(name)
    seen = {True: 0, False: 0}
    for i in range(1500):
        value = _sample(schema, rng)
        for _ in range(i % 4):  # 0-3 edits
            value = _mutate(value, rng)
        want = not any(validator.iter_errors(value))
        assert is_valid(schema, value) is want, value
        seen[want] += 1
    assert min(seen.values()) > 100, seen  # both outcomes well represented


def test_keyword_semantics_at_their_edges() -> None:
    cases: list[tuple[dict[str, Any], Any]] = [
        ({"type": "integer"}, 3.0),
        ({"type": "integer"}, True),
        ({"type": "number"}, False),
        ({"type": ["string", "null"]}, None),
        ({"const": 1}, True),
        ({"const": 1}, 1.0),
        ({"enum": [0, "a"]}, False),
        ({"enum": [[1, {"a": True}]]}, [1, {"a": 1}]),
        ({"items": False}, []),
        ({"items": False}, [1]),
        ({"additionalProperties": False, "properties": {"a": {}}}, {"a": 1, "b": 2}),
        ({"propertyNames": {"not": {"pattern": "(?i)key"}}}, {"MY_KEY": "1"}),
        ({"minimum": 0}, "not a number"),
        ({"minimum": 0}, -0.5),
        ({"minLength": 2, "maxLength": 3}, "é" * 3),
        ({"minProperties": 1}, {}),
    ]
    for schema, value in cases:
        want = not any(Draft202012Validator(schema).iter_errors(value))
        assert is_valid(schema, value) is want, (schema, value)


def test_what_it_does_not_decide_is_left_to_jsonschema() -> None:
    assert is_valid({"anyOf": [{"type": "string"}]}, "a") is None
    assert is_valid({"type": "strnig"}, "a") is None
    assert is_valid({"type": "array"}, (1, 2)) is None  # not a JSON value
    assert is_valid({"pattern": "("}, "a") is None
    assert schemas.errors("run", {"format": 1})  # invalid: jsonschema words the reasons
