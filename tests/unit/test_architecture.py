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
from tests.support import REPO

ROOT = REPO
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


#: The run folder's names: only their owner spells them (the schemas describe them too).
OWNED_LITERALS = ("run.json", "model_meta.json", "no_revision_available")
OWNER = "kit/runfolder.py"
MAX_FUNCTION_LINES = 80
MAX_EVALUATE_MODULES = 10
_DOTTED = re.compile(r"(?<![\w./-])kit(?:\.[A-Za-z_]\w*)+")
_PATH = re.compile(r"(?<![\w./-])kit/[\w./-]*\w")


def owned_literals(root: Path) -> list[str]:
    """String constants spelling a run-folder name outside its owner (``x``, ``/x``)."""
    found = []
    for path in kit_modules(root).values():
        rel = path.relative_to(root).as_posix()
        if rel == OWNER:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            value = node.value if isinstance(node, ast.Constant) else None
            if isinstance(value, str) and value.lstrip("/") in OWNED_LITERALS:
                found.append(f"{rel}:{node.lineno}: {value!r}")
    return sorted(found)


def long_functions(root: Path, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    found = []
    for path in kit_modules(root).values():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > limit:
                    rel = path.relative_to(root).as_posix()
                    found.append(f"{rel}:{node.lineno}: {node.name} is {n} lines")
    return found


def package_modules(root: Path, package: str) -> list[str]:
    """The modules directly in a package folder (``__init__.py`` not counted)."""
    folder = root / Path(*package.split("."))
    return sorted(p.stem for p in folder.glob("*.py") if p.name != "__init__.py")


def mteb_importers_undeclared(imports: Iterable[Import], root: Path) -> list[str]:
    """Modules importing mteb that their package's docstring does not name.

    The docstring says it in one sentence: "mteb is imported only in ``a``, ``b/c``...".
    """
    declared: dict[str, set[str]] = {}
    found = []
    for i in imports:
        if i.target != "mteb" or group(i.src) is None:
            continue
        pkg = group(i.src)
        assert pkg is not None
        if pkg not in declared:
            init = root / Path(*pkg.split(".")) / "__init__.py"
            doc = ast.get_docstring(ast.parse(init.read_text())) if init.is_file() else None
            sentence = re.search(r"mteb is imported[^.]*\.", " ".join((doc or "").split()))
            names = re.findall(r"``([\w/.]+)``", sentence.group(0)) if sentence else []
            declared[pkg] = {n.replace("/", ".") for n in names}
        short = i.src[len(pkg) + 1 :]
        if short not in declared[pkg]:
            found.append(f"{i.where(root)}: {i.src} imports mteb; {pkg}'s docstring does not say")
    return sorted(set(found))


def _exists(root: Path, dotted: str) -> bool:
    """Whether ``kit.a.b[.name]`` is a module of the tree, or a name defined in one."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        base = root / Path(*parts[:n])
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                rest = parts[n:]
                if not rest:
                    return True
                tree = ast.parse(candidate.read_text(encoding="utf-8"))
                names = {getattr(x, "name", None) for x in ast.walk(tree)}
                for x in ast.walk(tree):
                    targets = x.targets if isinstance(x, ast.Assign) else []
                    targets += [x.target] if isinstance(x, ast.AnnAssign) else []
                    names |= {t.id for t in targets if isinstance(t, ast.Name)}
                return rest[0] in names
    return False


def stale_pointers(root: Path) -> list[str]:
    """``kit/...`` paths and ``kit.`` names in docstrings, comments and docs, not in the tree."""
    texts: list[tuple[str, str]] = []
    for path in kit_modules(root).values():
        rel = path.relative_to(root).as_posix()
        source = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node, clean=False)
                if doc:
                    texts.append((f"{rel}:{getattr(node, 'lineno', 1)}", doc))
        texts += [(f"{rel}:{i}", line.split("#", 1)[1])
                  for i, line in enumerate(source.splitlines(), 1) if "#" in line]  # fmt: skip
    for doc in ("README.md", "ARCHITECTURE.md"):
        lines = (root / doc).read_text(encoding="utf-8").splitlines()
        texts += [(f"{doc}:{i}", line) for i, line in enumerate(lines, 1)]
    found = []
    for where, text in texts:
        found += [f"{where}: {m}" for m in _DOTTED.findall(text) if not _exists(root, m)]
        found += [f"{where}: {m}" for m in _PATH.findall(text) if not (root / m).exists()]
    return found


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


def test_verify_imports_nothing_of_evaluate(imports):
    """The reviewer's layer does not depend on the submitter's."""
    found = [
        f"{i.where(ROOT)}: {i.src} imports {i.target}"
        for i in imports
        if group(i.src) == "kit.verify" and group(i.target) == "kit.evaluate"
    ]
    assert not found, "\n".join(found)


def test_run_folder_names_have_one_owner():
    found = owned_literals(ROOT)
    assert not found, f"ask {OWNER} instead of spelling these:\n" + "\n".join(found)


def test_no_function_over_the_length_limit():
    found = long_functions(ROOT)
    assert not found, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(found)


def test_evaluate_keeps_few_top_level_modules():
    modules = package_modules(ROOT, "kit.evaluate")
    assert len(modules) <= MAX_EVALUATE_MODULES, (
        f"kit/evaluate/ has {len(modules)} top-level modules {modules}: "
        f"group them in subpackages (at most {MAX_EVALUATE_MODULES})"
    )


def test_mteb_is_imported_where_the_package_says(imports):
    found = mteb_importers_undeclared(imports, ROOT)
    assert not found, "\n".join(found)


def test_pointers_in_docs_exist():
    """Every kit/ path and kit. name in docstrings, comments, README and ARCHITECTURE exists."""
    found = stale_pointers(ROOT)
    assert not found, "stale pointers:\n" + "\n".join(found)


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


def test_new_checks_find_what_they_should(tmp_path):
    root = _tree(
        tmp_path,
        {
            "kit/__init__.py": "",
            "kit/runfolder.py": 'RUN = "run.json"\n',
            "kit/a.py": 'X = out / "run.json"\nY = "/model_meta.json"\nZ = "run.json says"\n',
            "kit/b.py": "def f():\n" + "    pass\n" * 81,
            "kit/p/__init__.py": '"""P. mteb is imported only in ``m`` and ``sub/n``."""\n',
            "kit/p/m.py": "import mteb\n",
            "kit/p/sub/n.py": "from mteb import x\n",
            "kit/p/o.py": "def f():\n    import mteb\n",
            "README.md": "see kit/a.py and kit/gone.py, kit.a.X and kit.a.nothing\n",
            "ARCHITECTURE.md": "",
        },
    )
    assert owned_literals(root) == ["kit/a.py:1: 'run.json'", "kit/a.py:2: '/model_meta.json'"]
    assert long_functions(root) == ["kit/b.py:1: f is 82 lines"]
    assert package_modules(root, "kit.p") == ["m", "o"]
    found = mteb_importers_undeclared(all_imports(root), root)
    assert found == ["kit/p/o.py:2: kit.p.o imports mteb; kit.p's docstring does not say"]
    assert stale_pointers(root) == ["README.md:1: kit.a.nothing", "README.md:1: kit/gone.py"]
