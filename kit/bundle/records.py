"""A bundle's members parsed once: the one parsed view every check and consumer reads.

``BundleRecords`` is made once, after verify's integrity check, from the members and the
manifest (parsed by the schema check). A JSON member (run.json, environment.json, a result
file, model_meta.json) is parsed by the strict reader the first time a check asks for it, and
the value or the refusal is kept: a later check, compare or re-run sees exactly what a parse
of its own would give, without parsing again. A JSON-lines member (run_settings.jsonl) is
kept as its non-blank lines, each parsed once.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from kit.bundle.jsonread import ParsedJson, parse_once
from kit.runfolder import ENVIRONMENT, RUN

#: (line number from 1, the line parsed) for each non-blank line of a JSON-lines member
Lines = tuple[tuple[int, ParsedJson], ...]


class BundleRecords:
    """The members of one bundle and their parsed records (each parsed at most once).

    ``members`` is read-only; ``manifest`` is the manifest as the schema check parsed it.
    """

    __slots__ = ("_json", "_lines", "manifest", "members")

    def __init__(self, members: Mapping[str, bytes], manifest: dict[str, Any]) -> None:
        self.members: Mapping[str, bytes] = (
            members if isinstance(members, MappingProxyType) else MappingProxyType(dict(members))
        )
        self.manifest = manifest
        self._json: dict[str, ParsedJson] = {}
        self._lines: dict[str, Lines] = {}

    def parsed(self, name: str) -> ParsedJson:
        """Member ``name`` parsed (once); KeyError when the bundle has no such member."""
        done = self._json.get(name)
        if done is None:
            done = self._json[name] = parse_once(self.members[name])
        return done

    def json(self, name: str, *, allow_nan: bool = False) -> Any:
        """The JSON value of member ``name``, as ``jsonread.parse`` gives it.

        Raises KeyError when the bundle has no such member, JsonRefused when it is refused.
        """
        return self.parsed(name).get(allow_nan=allow_nan)

    def lines(self, name: str) -> Lines:
        """The non-blank lines of JSON-lines member ``name``, each parsed (once); KeyError."""
        done = self._lines.get(name)
        if done is None:
            data = self.members[name]
            done = self._lines[name] = tuple(
                (i, parse_once(line)) for i, line in enumerate(data.split(b"\n"), 1) if line.strip()
            )
        return done

    @property
    def run(self) -> Any:
        """run.json's value (call once the records check passed)."""
        return self.json(RUN)

    @property
    def environment(self) -> Any:
        """environment.json's value (call once the records check passed)."""
        return self.json(ENVIRONMENT)
