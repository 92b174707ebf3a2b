"""OpenSSH ``allowed_signers`` files (ssh-keygen(1), "ALLOWED SIGNERS") and ``.pub`` keys.

Each line names principals (``*``/``?`` patterns, ``!`` negation), optional
``namespaces=``, ``valid-after=``, ``valid-before=`` and ``cert-authority`` options, and a key.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kit.errors import ExitCode, KitError
from kit.signing.wire import PublicKey, blob_type, decode_public_blob, fingerprint


def _match_pattern(value: str, pattern: str) -> bool:
    """OpenSSH match_pattern: ``*`` any run, ``?`` one character, case-sensitive."""
    regex = "".join({"*": ".*", "?": "."}.get(c) or re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


def _match_list(value: str, patterns: tuple[str, ...]) -> bool:
    """OpenSSH match_pattern_list: any positive match and no ``!negated`` match."""
    matched = False
    for pattern in patterns:
        if pattern.startswith("!"):
            if _match_pattern(value, pattern[1:]):
                return False
        elif _match_pattern(value, pattern):
            matched = True
    return matched


@dataclass(frozen=True)
class AllowedSigner:
    """One line of an allowed_signers file."""

    principals: tuple[str, ...]  # patterns, ``*``/``?`` wildcards, ``!`` negation
    key_type: str
    key_blob: bytes
    namespaces: tuple[str, ...] | None = None  # patterns; None: any namespace
    cert_authority: bool = False
    valid_after: datetime | None = None
    valid_before: datetime | None = None
    line: int = 0

    @property
    def fingerprint(self) -> str:
        """The key's ``SHA256:...`` fingerprint."""
        return fingerprint(self.key_blob)

    def allows_principal(self, identity: str) -> bool:
        """Whether ``identity`` matches the principals (patterns and negations)."""
        return _match_list(identity, self.principals)

    def allows_namespace(self, namespace: str) -> bool:
        """Whether the line allows signatures in ``namespace`` (any, without namespaces=)."""
        return self.namespaces is None or _match_list(namespace, self.namespaces)


def _parse_time(value: str) -> datetime:
    """OpenSSH's YYYYMMDD[HHMM[SS]][Z] (local time unless Z)."""
    utc = value[-1:] in ("Z", "z")
    digits = value[:-1] if utc else value
    fmt = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}.get(len(digits))
    if fmt is None or not digits.isdigit():
        raise ValueError(f"bad time {value!r} (expected YYYYMMDD[HHMM[SS]][Z])")
    moment = datetime.strptime(digits, fmt)
    return moment.replace(tzinfo=UTC) if utc else moment.astimezone()


def _take_token(s: str) -> tuple[str, str]:
    """The leading whitespace-delimited token (a ``"..."`` part may hold spaces), rest."""
    i = 0
    while i < len(s) and not s[i].isspace() and s[i] != '"':
        i += 1
    if i < len(s) and s[i] == '"':
        j = s.find('"', i + 1)
        if j < 0:
            raise ValueError("unterminated quote")
        return s[:i] + s[i + 1 : j], s[j + 1 :]
    return s[:i], s[i:]


def _split_options(s: str) -> tuple[list[str], str]:
    """Comma-separated options up to the first unquoted blank, and the rest of the line."""
    options, current, quoted, i = [], "", False, 0
    while i < len(s) and (quoted or s[i] not in " \t"):
        if s[i] == "\\" and s[i + 1 : i + 2] == '"':
            current += '\\"'
            i += 2
            continue
        if s[i] == '"':
            quoted = not quoted
        if s[i] == "," and not quoted:
            options.append(current)
            current = ""
        else:
            current += s[i]
        i += 1
    if quoted:
        raise ValueError("unterminated quote in options")
    return [*options, current], s[i:]


def _dequote(name: str, value: str) -> str:
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        raise ValueError(f"{name} value must be in double quotes")
    return value[1:-1].replace('\\"', '"')


def _read_key(s: str) -> tuple[str, bytes] | None:
    """``(type, blob)`` if ``s`` starts with ``keytype base64``, else None."""
    parts = s.split(None, 2)
    if len(parts) < 2:
        return None
    try:
        blob = base64.b64decode(parts[1], validate=True)
        return (parts[0], blob) if blob_type(blob) == parts[0] else None
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None


def _parse_signer_line(line: str, lineno: int) -> AllowedSigner:
    principals, rest = _take_token(line.strip())
    if not principals or not rest.strip():
        raise ValueError("expected: principals [options] keytype base64-key")
    rest = rest.lstrip()
    key = _read_key(rest)
    values: dict[str, str] = {}
    if key is None:
        options, rest = _split_options(rest)
        key = _read_key(rest.lstrip())
        if key is None:
            raise ValueError("no valid public key (keytype base64-key)")
        for option in options:
            name, eq, value = option.partition("=")
            name = name.lower()
            if name not in ("cert-authority", "namespaces", "valid-after", "valid-before"):
                raise ValueError(f"unknown option {name!r}")
            if name in values:
                raise ValueError(f"option {name!r} given twice")
            if (name == "cert-authority") == bool(eq):
                raise ValueError(f"option {name!r} {'takes no' if eq else 'needs a'} value")
            values[name] = _dequote(name, value) if eq else ""
    ns = values.get("namespaces")
    after, before = values.get("valid-after"), values.get("valid-before")
    return AllowedSigner(
        principals=tuple(principals.split(",")),
        key_type=key[0],
        key_blob=key[1],
        namespaces=tuple(ns.split(",")) if ns is not None else None,
        cert_authority="cert-authority" in values,
        valid_after=_parse_time(after) if after is not None else None,
        valid_before=_parse_time(before) if before is not None else None,
        line=lineno,
    )


def parse_allowed_signers(text: str) -> list[AllowedSigner]:
    """Parse allowed_signers text (ssh-keygen(1) "ALLOWED SIGNERS"); KitError(USAGE) if bad.

    Keys of any type are kept (unsupported ones simply never match a signature).
    """
    signers = []
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            signers.append(_parse_signer_line(stripped, lineno))
        except ValueError as e:
            raise KitError(f"allowed_signers line {lineno}: {e}", ExitCode.USAGE) from None
    return signers


def _read_text(path: Path, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KitError(f"{what} {path} not found", ExitCode.NOT_FOUND) from None
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, "strerror", None) or "not UTF-8 text"
        raise KitError(f"cannot read {what} {path}: {reason}", ExitCode.KEY_ERROR) from None


def load_allowed_signers(path: Path) -> list[AllowedSigner]:
    """Read and parse an allowed_signers file."""
    text = _read_text(path, "allowed_signers file")
    try:
        return parse_allowed_signers(text)
    except KitError as e:
        raise KitError(f"{path}: {e.message}", e.code) from None


def load_public_key(path: Path) -> PublicKey:
    """The key in an OpenSSH ``.pub`` file (``keytype base64 [comment]``)."""
    text = _read_text(path, "public key")
    lines = [s for ln in text.splitlines() if (s := ln.strip()) and not s.startswith("#")]
    key = _read_key(lines[0]) if len(lines) == 1 else None
    if key is None:
        raise KitError(f"{path} is not an OpenSSH public key line", ExitCode.KEY_ERROR)
    try:
        return decode_public_blob(key[1])
    except ValueError as e:
        raise KitError(f"{path}: {e}", ExitCode.KEY_ERROR) from None


def is_public_key_file(path: Path) -> bool:
    """Whether ``path`` names a public key: ``*.pub``, or a file whose first line is one.

    An unreadable file is not (the private key loader then says what is wrong with it).
    """
    path = Path(path)
    if path.name.endswith(".pub"):
        return True
    try:
        with path.open("rb") as f:
            head = f.read(16384)
        lines = [s for ln in head.decode().splitlines() if (s := ln.strip())]
    except (OSError, UnicodeDecodeError):
        return False
    return bool(lines) and _read_key(lines[0]) is not None
