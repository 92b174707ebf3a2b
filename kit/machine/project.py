"""The project config ``repro-kit.toml``: settings every command run in a folder shares.

``scripts/quickstart.sh`` writes one beside the checkout with the Hugging Face cache and the
offline mode its evaluation used, so the next ``repro-kit evaluate`` in a new shell reads the
same cache and does not wait on an unreachable hub::

    [env]
    HF_HOME = "/home/me/repro-kit/.cache/hf"   # a relative path is taken from the file's folder
    HF_HUB_OFFLINE = "1"

The file is looked for in the working folder, then in each parent. ``apply_project_config``
sets each variable the environment does not set already (the environment wins). Only the
settings the kit and the Hugging Face libraries read may be named (``HF_*``,
``TRANSFORMERS_*``, ``SENTENCE_TRANSFORMERS_HOME``, ``XDG_CACHE_HOME``,
``REPRO_KIT_SIGNING_KEY``); anything else is a usage error, so a typo is not silently ignored.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import MutableMapping
from pathlib import Path

from kit.errors import ExitCode, KitError

CONFIG_NAME = "repro-kit.toml"
_ALLOWED = re.compile(
    r"^(HF_[A-Z0-9_]+|TRANSFORMERS_[A-Z0-9_]+|SENTENCE_TRANSFORMERS_HOME|XDG_CACHE_HOME"
    r"|REPRO_KIT_SIGNING_KEY)$"
)
_PATHS = {"HF_HOME", "HF_HUB_CACHE", "HF_DATASETS_CACHE", "SENTENCE_TRANSFORMERS_HOME"}
_PATHS |= {"XDG_CACHE_HOME", "REPRO_KIT_SIGNING_KEY"}


def find_project_config(start: Path) -> Path | None:
    """``repro-kit.toml`` in ``start`` or the nearest parent holding one; None if none does."""
    here = Path(os.path.abspath(start))
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


def _value(path: Path, name: str, value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return str(value)
    if not isinstance(value, str):
        raise KitError(f"{path}: [env] {name} must be a string", ExitCode.USAGE)
    if name in _PATHS and value:
        return str((path.parent / Path(value).expanduser()).resolve())
    return value


def read_project_config(path: Path) -> dict[str, str]:
    """The ``[env]`` settings of the config file at ``path`` (paths made absolute)."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise KitError(f"cannot read {path}: {e.strerror or e}", ExitCode.USAGE) from None
    except (ValueError, UnicodeDecodeError) as e:
        raise KitError(f"{path} is not valid TOML: {e}", ExitCode.USAGE) from None
    unknown = sorted(set(data) - {"env"})
    if unknown:
        raise KitError(f"{path}: unknown table or key {unknown[0]!r} (only [env])", ExitCode.USAGE)
    table = data.get("env", {})
    if not isinstance(table, dict):
        raise KitError(f"{path}: env must be a table ([env])", ExitCode.USAGE)
    settings = {}
    for name, value in table.items():
        if not _ALLOWED.match(name):
            raise KitError(
                f"{path}: [env] {name} is not a setting the kit reads (HF_*, TRANSFORMERS_*, "
                "SENTENCE_TRANSFORMERS_HOME, XDG_CACHE_HOME, REPRO_KIT_SIGNING_KEY)",
                ExitCode.USAGE,
            )
        settings[name] = _value(Path(path), name, value)
    return settings


def apply_project_config(environ: MutableMapping[str, str], cwd: Path) -> Path | None:
    """Set the settings of the config found from ``cwd`` that ``environ`` lacks; its path."""
    path = find_project_config(cwd)
    if path is None:
        return None
    for name, value in read_project_config(path).items():
        environ.setdefault(name, value)
    return path
