"""JSON Schemas (Draft 2020-12) of the records the kit writes, shipped with the package.

``errors`` checks a record against one; ``subset`` decides validity for the keywords these
schemas use without importing jsonschema (which explains any violation).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from kit.errors import ExitCode, KitError

NAMES = ("manifest", "run", "environment", "training")


@cache
def load(name: str) -> dict[str, Any]:
    if name not in NAMES:
        raise KitError(f"unknown schema '{name}' (known: {', '.join(NAMES)})", ExitCode.NOT_FOUND)
    text = (Path(__file__).parent / f"{name}.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def text(name: str) -> str:
    return json.dumps(load(name), indent=2) + "\n"


def errors(name: str, instance: Any) -> list[str]:
    """Every schema violation as 'path: message', sorted; empty when valid.

    A valid record is told apart without importing jsonschema (``subset``); jsonschema
    finds and words the violations.
    """
    from kit.bundle.schemas.subset import is_valid

    schema = load(name)
    if is_valid(schema, instance):
        return []
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema)
    out = []
    for err in validator.iter_errors(instance):
        where = "/".join(str(p) for p in err.absolute_path) or "(root)"
        out.append(f"{where}: {err.message[:200]}")
    return sorted(out)
