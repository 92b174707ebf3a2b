"""The package layout holds: layers, no import loop, click/rich only in the CLI, small modules.

Reads kit/ with ``ast`` (no kit module is imported but ``kit`` itself, for ``LAYERS``). Every
``import``/``from ... import`` counts, also inside functions and under ``if TYPE_CHECKING``;
relative imports are resolved; ``from kit.pkg import name`` counts as importing
``kit.pkg.name`` when that is a module, else ``kit.pkg``. The graph's nodes are modules (a
package is its ``__init__.py``); importing ``kit.a.b`` is an edge to ``kit.a.b`` only, not to
the ``kit.a`` that Python runs first. The rules are in kit/__init__.py and ARCHITECTURE.md.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from kit import LAYERS

ROOT = Path(__file__).resolve().parent.parent
KIT = ROOT / "kit"
MAX_LINES = 450
CLI_ONLY = frozenset({"click", "rich"})  # third-party packages only kit.cli may import
CLI = "kit.cli"


@dataclass(frozen=True)
class Import:
    """One imported name: which module imports what, and where."""

    src: str  # the importing module, e.g. "kit.cli.merge"
    target: str  # a kit module ("kit.cli") or a third-party top-level name ("click")
    path: Path
    line: int

    @property
    def is_kit(self) -> bool:
        return self.target == "kit" or self.target.startswith("kit.")

    def where(self, root: Path) -> str:
        return f"{self.path.relative_to(root).as_posix()}:{self.line}"


def module_name(path: Path, root: Path) -> str:
    """kit/a/b.py -> kit.a.b; kit/a/__init__.py -> kit.a (root holds the kit folder)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def kit_modules(root: Path) -> dict[str, Path]:
    """Every module under root/kit by dotted name."""
    files = sorted(p for p in (root / "kit").rglob("*.py") if "__pycache__" not in p.parts)
    return {module_name(p, root): p for p in files}


def _resolve(name: str, modules: Mapping[str, Path]) -> str:
    """A kit name to the longest prefix that is a module; other names to their top level."""
    if name != "kit" and not name.startswith("kit."):
        return name.split(".")[0]
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in modules:
            return candidate
    return name


def _relative_base(src: str, path: Path, level: int) -> str:
    package = src if path.name == "__init__.py" else src.rpartition(".")[0]
    parts = package.split(".")
    if level - 1 >= len(parts):
        raise ValueError(f"{path}: relative import beyond the top-level package")
    return ".".join(parts[: len(parts) - (level - 1)])


def imports_of(src: str, path: Path, modules: Mapping[str, Path]) -> list[Import]:
    """Every import in one file, kit names resolved to modules."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(src, _resolve(alias.name, modules), path, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.module == "__future__":
                continue
            if node.level:
                base = _relative_base(src, path, node.level)
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                target = sub if sub in modules else _resolve(module, modules)
                found.append(Import(src, target, path, node.lineno))
    return sorted(found, key=lambda i: (str(i.path), i.line, i.target))


def all_imports(root: Path) -> list[Import]:
    modules = kit_modules(root)
    return [i for name, path in modules.items() for i in imports_of(name, path, modules)]


def group(module: str) -> str | None:
    """The entry of the layer table a module belongs to (None for the package face ``kit``)."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else None


# ---------------------------------------------------------------- the checks, as functions


def find_cycles(imports: Iterable[Import]) -> list[list[Import]]:
    """One cycle (as its chain of imports) per strongly connected set of kit modules."""
    edges: dict[str, dict[str, Import]] = {}
    for i in imports:
        if i.is_kit and i.target != i.src:
            edges.setdefault(i.src, {}).setdefault(i.target, i)  # first place it happens
    nodes = sorted(set(edges) | {t for ts in edges.values() for t in ts})

    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(v: str) -> None:  # Tarjan; the graph is small, recursion is fine
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, {})):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in nodes:
        if v not in index:
            connect(v)

    cycles = []
    for component in sorted(components):
        inside = set(component)
        start = component[0]
        # breadth-first from start back to start, staying inside the component
        came_from: dict[str, Import] = {}
        frontier = [start]
        while frontier and start not in came_from:
            following = []
            for v in frontier:
                for w, imp in sorted(edges.get(v, {}).items()):
                    if w in inside and w not in came_from:
                        came_from[w] = imp
                        following.append(w)
            frontier = following
        chain = [came_from[start]]
        while chain[-1].src != start:
            chain.append(came_from[chain[-1].src])
        cycles.append(chain[::-1])
    return cycles


def layer_violations(imports: Iterable[Import], layers: Mapping[str, int], root: Path) -> list[str]:
    """Imports that go up a layer or sideways into a sibling package of the same layer."""
    found = []
    for i in imports:
        if not i.is_kit or i.target == "kit":
            continue  # `from kit import __version__` is allowed for everyone
        src, dst = group(i.src), group(i.target)
        if src is None:
            found.append(f"{i.where(root)}: kit/__init__.py imports {i.target}; it must not")
            continue
        if src == dst or src not in layers or dst not in layers:
            continue  # an unlisted package is test_every_package_has_a_layer's finding
        if layers[dst] < layers[src]:
            continue
        kind = "upward" if layers[dst] > layers[src] else "sideways"
        found.append(
            f"{i.where(root)}: {kind}: {i.src} ({src}, layer {layers[src]}) imports "
            f"{i.target} ({dst}, layer {layers[dst]})"
        )
    return found


def cli_only_violations(imports: Iterable[Import], root: Path) -> list[str]:
    return [
        f"{i.where(root)}: {i.src} imports {i.target}; only {CLI} may"
        for i in imports
        if i.target in CLI_ONLY and group(i.src) != CLI
    ]


def oversized(root: Path, limit: int = MAX_LINES) -> list[str]:
    found = []
    for path in kit_modules(root).values():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > limit:
            found.append(f"{path.relative_to(root).as_posix()}: {lines} lines")
    return found


def top_level_entries(root: Path) -> set[str]:
    """kit.<name> for every package folder and module file directly under root/kit."""
    kit = root / "kit"
    folders = {
        f"kit.{p.name}"
        for p in kit.iterdir()
        if p.is_dir() and p.name != "__pycache__" and any(p.rglob("*.py"))
    }
    files = {f"kit.{p.stem}" for p in kit.glob("*.py") if p.name != "__init__.py"}
    return folders | files


def _show_cycle(chain: list[Import], root: Path) -> str:
    names = " -> ".join([chain[0].src] + [i.target for i in chain])
    steps = "; ".join(f"{i.src} -> {i.target} at {i.where(root)}" for i in chain)
    return f"{names}  ({steps})"


# ---------------------------------------------------------------- the repository


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    return all_imports(ROOT)


def test_no_import_cycle(imports):
    cycles = find_cycles(imports)
    assert not cycles, "import cycles between kit modules:\n" + "\n".join(
        _show_cycle(c, ROOT) for c in cycles
    )


def test_imports_go_down_the_layers(imports):
    found = layer_violations(imports, LAYERS, ROOT)
    assert not found, (
        "imports must go to the own package or a lower layer (kit.LAYERS):\n" + "\n".join(found)
    )


def test_only_the_cli_imports_click_or_rich(imports):
    found = cli_only_violations(imports, ROOT)
    assert not found, "\n".join(found)


def test_package_face_stays_light(imports):
    """kit/__init__.py is imported by every module: no kit import, nothing beyond stdlib."""
    face = [i for i in imports if i.src == "kit"]
    heavy = [
        f"{i.where(ROOT)}: imports {i.target}"
        for i in face
        if i.is_kit or i.target not in sys.stdlib_module_names
    ]
    assert not heavy, "kit/__init__.py must stay free of kit and third-party imports:\n" + (
        "\n".join(heavy)
    )


def test_no_module_over_the_size_limit():
    found = oversized(ROOT)
    assert not found, f"modules over {MAX_LINES} lines (split them):\n" + "\n".join(found)


def test_every_package_has_a_layer():
    present = top_level_entries(ROOT)
    missing = sorted(present - set(LAYERS))
    stale = sorted(set(LAYERS) - present)
    assert not missing, f"not in kit.LAYERS (give each a layer): {missing}"
    assert not stale, f"kit.LAYERS names what kit/ does not hold: {stale}"


def test_architecture_md_lists_the_layer_table():
    """ARCHITECTURE.md's layer table says what kit.LAYERS says."""
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\|\s*(\d+)\s*\|\s*`kit/([\w.]+?)(?:/|\.py)`\s*\|", text, re.MULTILINE)
    documented = {f"kit.{name}": int(layer) for layer, name in rows}
    assert documented == dict(LAYERS), (
        f"ARCHITECTURE.md layer table {sorted(documented.items())} != "
        f"kit.LAYERS {sorted(LAYERS.items())}"
    )


# ---------------------------------------------------------------- the checker, on a made-up tree


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_checker_finds_what_it_should(tmp_path):
    root = _tree(
        tmp_path,
        {
            "kit/__init__.py": '__version__ = "0"\n',
            "kit/errors.py": "",
            "kit/low/__init__.py": "from kit import __version__\n",
            "kit/low/a.py": "def f():\n    from kit.high import b\n",  # late, upward
            "kit/high/__init__.py": "",
            "kit/high/b.py": "from ..low import a\nfrom . import c\nimport rich.console\n",
            "kit/high/c.py": "from kit.side.d import x\n",  # sideways
            "kit/side/__init__.py": "",
            "kit/side/d.py": "from kit.errors import ExitCode\n" + "pass\n" * 5,
            "kit/cli/__init__.py": "import click\nfrom kit.high.b import y\n",
        },
    )
    layers = {"kit.cli": 3, "kit.high": 2, "kit.side": 2, "kit.low": 1, "kit.errors": 0}
    found = all_imports(root)
    assert {(i.src, i.target) for i in found} >= {
        ("kit.low", "kit"),
        ("kit.low.a", "kit.high.b"),
        ("kit.high.b", "kit.low.a"),
        ("kit.high.b", "kit.high.c"),
        ("kit.high.c", "kit.side.d"),
        ("kit.side.d", "kit.errors"),
    }
    cycles = find_cycles(found)
    assert [[(i.src, i.target) for i in c] for c in cycles] == [
        [("kit.high.b", "kit.low.a"), ("kit.low.a", "kit.high.b")]
    ]
    assert layer_violations(found, layers, root) == [
        "kit/high/c.py:1: sideways: kit.high.c (kit.high, layer 2) imports kit.side.d "
        "(kit.side, layer 2)",
        "kit/low/a.py:2: upward: kit.low.a (kit.low, layer 1) imports kit.high.b "
        "(kit.high, layer 2)",
    ]
    assert cli_only_violations(found, root) == [
        "kit/high/b.py:3: kit.high.b imports rich; only kit.cli may"
    ]
    assert oversized(root, limit=5) == ["kit/side/d.py: 6 lines"]
    assert top_level_entries(root) == set(layers)
