"""Whether a record is valid under one of the kit's schemas, without importing jsonschema.

jsonschema costs ~50 ms to import; verify's records are almost always valid. ``is_valid``
decides validity exactly as ``jsonschema.Draft202012Validator`` does (no format assertion),
for the keywords the kit's schemas use; anything else (another keyword, a type that JSON
does not have) is ``None``: undecided, so the caller asks jsonschema. A record found
invalid is explained by jsonschema too, so every message is jsonschema's own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sized
from typing import Any, cast

# Keywords with no effect on validity here (annotations, and names Draft 2020-12 ignores).
_INERT = frozenset({"$schema", "$id", "$comment", "title", "description", "version", "default"})
_JSON_TYPES = (dict, list, str, int, float, bool, type(None))


class _Undecided(Exception):
    """A keyword, type name or value this module does not decide."""


def is_valid(schema: Any, instance: Any) -> bool | None:
    """True/False as jsonschema's Draft 2020-12 validator decides; None when undecided."""
    try:
        return _valid(schema, instance)
    except Exception:  # _Undecided, or a bad pattern in a schema: jsonschema will say
        return None


def _valid(schema: Any, x: Any) -> bool:
    if schema is True:
        return True
    if schema is False:
        return False
    if not isinstance(schema, dict) or not isinstance(x, _JSON_TYPES):
        raise _Undecided
    for key, arg in schema.items():
        check = _KEYWORDS.get(key)
        if check is None:
            if key in _INERT:
                continue
            raise _Undecided(key)
        if not check(arg, x, schema):
            return False
    return True


def _is_type(x: Any, name: str) -> bool:
    if name == "object":
        return isinstance(x, dict)
    if name == "array":
        return isinstance(x, list)
    if name == "string":
        return isinstance(x, str)
    if name == "null":
        return x is None
    if name == "boolean":
        return isinstance(x, bool)
    if name == "number":
        return isinstance(x, int | float) and not isinstance(x, bool)
    if name == "integer":
        if isinstance(x, bool):
            return False
        return isinstance(x, int) or (isinstance(x, float) and x.is_integer())
    raise _Undecided(name)


def _equal(one: Any, two: Any) -> bool:
    """jsonschema's equality: True is not 1, False is not 0, at any depth."""
    if one is two:
        return True
    if isinstance(one, str) or isinstance(two, str):
        return bool(one == two)
    if isinstance(one, list) and isinstance(two, list):
        return len(one) == len(two) and all(_equal(a, b) for a, b in zip(one, two, strict=True))
    if isinstance(one, dict) and isinstance(two, dict):
        return len(one) == len(two) and all(k in two and _equal(v, two[k]) for k, v in one.items())
    if isinstance(one, bool) or isinstance(two, bool):
        return False  # not the same object, so not both True or both False
    if not isinstance(one, _JSON_TYPES) or not isinstance(two, _JSON_TYPES):
        raise _Undecided
    return bool(one == two)


def _type(arg: Any, x: Any, schema: dict[str, Any]) -> bool:
    return any(_is_type(x, t) for t in (arg if isinstance(arg, list) else [arg]))


def _required(arg: Any, x: Any, schema: dict[str, Any]) -> bool:
    return not isinstance(x, dict) or all(p in x for p in arg)


def _properties(arg: Any, x: Any, schema: dict[str, Any]) -> bool:
    return not isinstance(x, dict) or all(_valid(s, x[p]) for p, s in arg.items() if p in x)


def _additional(arg: Any, x: Any, schema: dict[str, Any]) -> bool:
    if not isinstance(x, dict):
        return True
    if "patternProperties" in schema:
        raise _Undecided("patternProperties")
    known = schema.get("properties", {})
    extras = [p for p in x if p not in known]
    if isinstance(arg, dict):
        return all(_valid(arg, x[p]) for p in extras)
    return bool(arg) or not extras


def _items(arg: Any, x: Any, schema: dict[str, Any]) -> bool:
    if not isinstance(x, list):
        return True
    if "prefixItems" in schema:
        raise _Undecided("prefixItems")
    if arg is False:
        return not x
    return all(_valid(arg, item) for item in x)


def _pattern(arg: Any, x: Any, schema: dict[str, Any]) -> bool:
    return not isinstance(x, str) or re.search(arg, x) is not None


def _minimum(arg: Any, x: Any, schema: dict[str, Any]) -> bool:
    return not _is_type(x, "number") or not x < arg


def _not(arg: Any, x: Any, schema: dict[str, Any]) -> bool:
    return not _valid(arg, x)


def _property_names(arg: Any, x: Any, schema: dict[str, Any]) -> bool:
    return not isinstance(x, dict) or all(_valid(arg, key) for key in x)


def _size(kind: type, at_least: bool) -> Callable[[Any, Any, dict[str, Any]], bool]:
    def check(arg: Any, x: Any, schema: dict[str, Any]) -> bool:
        if not isinstance(x, kind):
            return True
        size = len(cast(Sized, x))
        return size >= arg if at_least else size <= arg

    return check


_KEYWORDS: dict[str, Callable[[Any, Any, dict[str, Any]], bool]] = {
    "type": _type,
    "required": _required,
    "properties": _properties,
    "additionalProperties": _additional,
    "items": _items,
    "pattern": _pattern,
    "minimum": _minimum,
    "enum": lambda arg, x, schema: any(_equal(e, x) for e in arg),
    "const": lambda arg, x, schema: _equal(x, arg),
    "not": _not,
    "propertyNames": _property_names,
    "minItems": _size(list, True),
    "maxItems": _size(list, False),
    "minLength": _size(str, True),
    "maxLength": _size(str, False),
    "minProperties": _size(dict, True),
}
