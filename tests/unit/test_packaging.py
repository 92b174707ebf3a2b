"""The `test` extra names what the test command runs, and the dev lockfiles pin all of it."""

from __future__ import annotations

import re
import tomllib

from tests.support import REPO


def _name(requirement: str) -> str:
    """The normalised project name of a requirement line (PEP 503)."""
    name = re.split(r"[<>=!~;\[ ]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def _listed(path: str) -> set[str]:
    lines = (REPO / path).read_text().splitlines()
    return {_name(x) for x in lines if x.strip() and not x.lstrip().startswith(("#", "-"))}


def _test_extra() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {_name(r) for r in project["optional-dependencies"]["test"]}


def test_test_extra_names_every_dev_tool() -> None:
    """`pip install -e .[test]` gives what scripts/test.sh runs (mypy and its stubs too)."""
    missing = sorted(_listed("lockfiles/dev.in") - _test_extra())
    assert not missing, f"lockfiles/dev.in names {missing}, the test extra does not"


def test_dev_lockfiles_pin_the_test_extra() -> None:
    for flavor in ("cpu", "cuda", "mps"):
        pinned = {_name(m) for m in re.findall(r"^([A-Za-z0-9_.-]+)==", _lock(flavor), re.M)}
        missing = sorted(_test_extra() - pinned)
        assert not missing, f"lockfiles/{flavor}-dev.txt does not pin {missing}"


def _lock(flavor: str) -> str:
    return (REPO / "lockfiles" / f"{flavor}-dev.txt").read_text()
