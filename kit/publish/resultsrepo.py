"""The results checkout an export writes into: what is one, making one, where to suggest one.

A results checkout is the top folder of a git work tree holding a ``results/`` folder, as a
clone of github.com/embeddings-benchmark/results is. ``checkout_problem`` says why a folder is
not one (a mistyped path is refused, not filled); ``kit_checkout`` finds repro-kit's own
source checkout around a folder (results never go there); ``init_checkout`` makes an empty
results checkout; ``suggested_checkout`` is the folder a printed next step names.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from kit.machine.git import init_repository, work_tree_top

RESULTS = "results"  # the folder of a results checkout that holds results/<org__model>/<rev>/
PROJECT = "repro-kit"  # the name in the kit's own pyproject.toml
UPSTREAM = "https://github.com/embeddings-benchmark/results"


def _names_kit(folder: Path) -> bool:
    try:
        data = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, ValueError):  # no file, unreadable, not TOML
        return False
    project = data.get("project")
    return isinstance(project, dict) and project.get("name") == PROJECT


def _own_source() -> Path | None:
    """The checkout holding the running kit's source (an editable install), or None."""
    root = Path(__file__).resolve().parents[2]
    return root if _names_kit(root) else None


def kit_checkout(path: Path) -> Path | None:
    """The repro-kit checkout holding ``path``: the running kit's source tree, or any folder
    around ``path`` whose pyproject.toml names the project repro-kit; None if neither."""
    here = Path(os.path.abspath(path))
    own = _own_source()
    for folder in (here, *here.parents):
        if folder == own or _names_kit(folder):
            return folder
    return None


def checkout_problem(repo: Path) -> str | None:
    """Why ``repo`` is not a results checkout (one short clause), or None when it is one."""
    repo = Path(repo)
    if not repo.exists():
        return "no such folder"
    if not repo.is_dir():
        return "not a folder"
    top = work_tree_top(repo)
    if top is None:
        return "not a git work tree"
    if top != repo.resolve():
        return f"a folder inside the git work tree {top}, not its top"
    if not (repo / RESULTS).is_dir():
        return f"a git work tree without a {RESULTS}/ folder"
    return None


def init_problem(repo: Path) -> str | None:
    """Why an empty results checkout cannot be made at ``repo`` (None: it can).

    It can where nothing is (a missing or empty folder) and in the top of a git work tree that
    has no ``results/`` yet; never over a folder of other files.
    """
    repo = Path(repo)
    if not repo.exists():
        return None
    if not repo.is_dir():
        return "it is not a folder"
    if not any(repo.iterdir()) or work_tree_top(repo) == repo.resolve():
        return None
    return "it holds other files and is not a git work tree"


def init_checkout(repo: Path) -> None:
    """Make ``repo`` an empty results checkout: ``git init`` (unless it is a work tree's top)
    and a ``results/`` folder."""
    repo = Path(repo)
    if not repo.exists() or work_tree_top(repo) != repo.resolve():
        init_repository(repo)
    (repo / RESULTS).mkdir(exist_ok=True)


def suggested_checkout(cwd: Path) -> str:
    """The results checkout a next step names, as seen from ``cwd``: ``results`` there, or,
    inside repro-kit's own checkout, the ``results`` folder beside that checkout."""
    own = kit_checkout(cwd)
    if own is None:
        return RESULTS
    return os.path.relpath(own.parent / RESULTS, cwd)
