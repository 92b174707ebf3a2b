"""What mteb evaluates for each task (splits, subsets, main score, type), cached per mteb version.

Importing mteb costs seconds; verify takes milliseconds. ``MtebLayouts`` keeps each task's
layout in a user cache file (``$XDG_CACHE_HOME/repro-kit/mteb-tasks-<version>.json``, else
``~/.cache/repro-kit/``), written atomically, and asks mteb only for the tasks asked and missing.
Tests pass any object with the ``TaskLayouts`` shape (``StaticLayouts``). mteb is imported
here (``mteb_task_layouts``) and nowhere else in ``kit.verify``.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from kit.bundle.jsonread import JsonRefused, parse
from kit.fsio import atomic_write_json

#: benchmark ("" for tasks by name) -> task name -> layout
Layout = dict[str, Any]
_FIELDS = {"eval_splits": list, "hf_subsets": list, "main_score": str, "type": str}
_CACHE_FORMAT = "repro-kit/mteb-tasks"


class TaskLayouts(Protocol):
    """Where task layouts come from: the mteb version and a lookup by name."""

    mteb_version: str

    def lookup(self, names: Sequence[str], benchmark: str | None) -> dict[str, Layout]:
        """Layouts of ``names`` (as ``benchmark`` defines them); unknown names left out."""
        ...


class StaticLayouts:
    """Fixed layouts (for tests): ``{benchmark or "": {name: layout}}``."""

    def __init__(self, mteb_version: str, layouts: Mapping[str, Mapping[str, Layout]]) -> None:
        self.mteb_version = mteb_version
        self._layouts = layouts

    def lookup(self, names: Sequence[str], benchmark: str | None) -> dict[str, Layout]:
        known = self._layouts.get(benchmark or "", {})
        return {n: dict(known[n]) for n in names if n in known}


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/repro-kit`` (absolute only), else ``~/.cache/repro-kit``."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "repro-kit"


def installed_mteb_version() -> str | None:
    """The installed mteb's version, read from its metadata (mteb is not imported).

    The version is read from mteb's ``.dist-info`` folder on ``sys.path`` as
    ``importlib.metadata`` finds it (which costs ~20 ms to import); anything less plain
    (an egg, a zip on the path, two installs in one folder) is left to ``importlib.metadata``.
    """
    version = dist_info_version("mteb")
    if version is not None:
        return version
    from importlib import metadata

    try:
        return metadata.version("mteb")
    except metadata.PackageNotFoundError:
        return None


def dist_info_version(name: str) -> str | None:
    """The ``Version`` of the first ``<name>-*.dist-info`` on ``sys.path`` (lowercase ``name``).

    None when that is not plainly the distribution ``importlib.metadata`` would read.
    """
    from importlib.machinery import PathFinder

    if any(f is not PathFinder and hasattr(f, "find_distributions") for f in sys.meta_path):
        return None  # another finder may know distributions: ask importlib.metadata
    for entry in sys.path:
        folder = entry or "."
        if os.path.isfile(folder):
            return None  # a zip: importlib.metadata looks inside
        try:
            children = os.listdir(folder)
        except OSError:
            continue
        found = [c for c in children if _dist_name(c) == name]
        if not found:
            continue
        if len(found) > 1 or not found[0].endswith(".dist-info"):
            return None
        try:
            with open(os.path.join(folder, found[0], "METADATA"), encoding="utf-8") as f:
                for line in f:
                    if not line.strip():
                        break
                    if line.startswith("Version:"):
                        return line.partition(":")[2].strip() or None
        except (OSError, UnicodeDecodeError):
            return None
        return None
    return None


def _dist_name(child: str) -> str | None:
    """The normalised distribution name of a metadata folder's name, else None."""
    low = child.lower()
    if not low.endswith((".dist-info", ".egg-info")):
        return None
    return re.sub(r"[-_.]+", "_", low.rpartition(".")[0].partition("-")[0])


def _valid(layout: Any) -> bool:
    return isinstance(layout, dict) and all(
        isinstance(layout.get(k), t) for k, t in _FIELDS.items()
    )


class MtebLayouts:
    """Layouts from the installed mteb, through a per-version cache file.

    ``fetch`` (names, benchmark) -> layouts is mteb itself by default; a cache that cannot be
    read is refilled, one that cannot be written is skipped.
    """

    def __init__(
        self,
        mteb_version: str,
        directory: Path | None = None,
        fetch: Callable[[list[str], str | None], dict[str, Layout]] | None = None,
    ) -> None:
        self.mteb_version = mteb_version
        safe = re.sub(r"[^A-Za-z0-9._+-]", "_", mteb_version)
        self.path = (directory or cache_dir()) / f"mteb-tasks-{safe}.json"
        self._fetch = fetch
        self._data: dict[str, dict[str, Layout]] | None = None

    def _load(self) -> dict[str, dict[str, Layout]]:
        if self._data is None:
            self._data = {}
            try:
                raw = parse(self.path.read_bytes())
            except (OSError, JsonRefused):
                raw = None
            if (
                isinstance(raw, dict)
                and raw.get("format") == _CACHE_FORMAT
                and raw.get("mteb_version") == self.mteb_version
                and isinstance(raw.get("layouts"), dict)
            ):
                for bench, tasks in raw["layouts"].items():
                    if isinstance(tasks, dict):
                        self._data[bench] = {n: v for n, v in tasks.items() if _valid(v)}
        return self._data

    def lookup(self, names: Sequence[str], benchmark: str | None) -> dict[str, Layout]:
        data = self._load()
        known = data.setdefault(benchmark or "", {})
        missing = [n for n in dict.fromkeys(names) if n not in known]
        if missing:
            fetched = self._mteb(missing, benchmark)
            fresh = {n: v for n, v in fetched.items() if _valid(v) and n not in known}
            if fresh:
                known.update(fresh)
                self._save()
        return {n: dict(known[n]) for n in names if n in known}

    def _mteb(self, names: list[str], benchmark: str | None) -> dict[str, Layout]:
        if self._fetch is not None:
            return self._fetch(names, benchmark)
        return mteb_task_layouts(names, benchmark)

    def _save(self) -> None:
        body = {"format": _CACHE_FORMAT, "mteb_version": self.mteb_version, "layouts": self._data}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.path, body)
        except OSError:
            pass  # a read-only home: verify still works, only slower next time


def default_layouts() -> TaskLayouts | None:
    """The installed mteb's layouts (cached), or None when mteb is not installed."""
    version = installed_mteb_version()
    return None if version is None else MtebLayouts(version)


def mteb_task_layouts(names: list[str], benchmark: str | None) -> dict[str, dict[str, Any]]:
    """What mteb evaluates for each task: eval splits, subsets, main score, type.

    Tasks are taken from ``benchmark`` when given (benchmarks may narrow splits and
    subsets), else by name. Names mteb does not know are left out.
    """
    import logging
    import warnings

    import mteb

    logging.getLogger("mteb").setLevel(logging.ERROR)  # superseded-task notices
    warnings.filterwarnings("ignore", category=UserWarning)
    found: dict[str, Any] = {}
    if benchmark:
        try:
            found = {t.metadata.name: t for t in mteb.get_benchmark(benchmark).tasks}
        except (KeyError, ValueError):
            return {}
    else:
        for name in names:
            try:
                found[name] = mteb.get_task(name)
            except (KeyError, ValueError):
                continue
    return {
        name: {
            "eval_splits": list(task.eval_splits),
            "hf_subsets": list(task.hf_subsets),
            "main_score": task.metadata.main_score,
            "type": task.metadata.type,
        }
        for name, task in found.items()
        if name in names or benchmark
    }
