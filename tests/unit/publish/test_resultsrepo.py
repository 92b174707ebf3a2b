"""What a results checkout is, making one, and never the kit's own checkout (real git)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kit.publish.resultsrepo import (
    checkout_problem,
    init_checkout,
    init_problem,
    kit_checkout,
    suggested_checkout,
)
from tests.support import REPO, require_tools


@pytest.fixture(autouse=True)
def _git() -> None:
    require_tools("git", how="apt-get install git")


def test_what_is_not_a_results_checkout(tmp_path: Path) -> None:
    assert checkout_problem(tmp_path / "resutls") == "no such folder"
    (tmp_path / "file").write_text("x")
    assert checkout_problem(tmp_path / "file") == "not a folder"
    plain = tmp_path / "plain"
    (plain / "results").mkdir(parents=True)
    assert checkout_problem(plain) == "not a git work tree"
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    assert checkout_problem(repo) == "a git work tree without a results/ folder"
    (repo / "results" / "org__m").mkdir(parents=True)
    assert checkout_problem(repo) is None
    assert "not its top" in (checkout_problem(repo / "results") or "")


def test_init_makes_one_only_where_nothing_else_is(tmp_path: Path) -> None:
    fresh = tmp_path / "new" / "results-checkout"
    assert init_problem(fresh) is None
    init_checkout(fresh)
    assert checkout_problem(fresh) is None
    init_checkout(fresh)  # a results checkout is left as it is
    assert checkout_problem(fresh) is None
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    assert init_problem(busy) == "it holds other files and is not a git work tree"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert init_problem(empty) is None


def test_the_kits_own_checkout_is_recognised(tmp_path: Path) -> None:
    assert kit_checkout(REPO / "results") == REPO  # the running kit's source tree
    clone = tmp_path / "clone"
    (clone / "runs").mkdir(parents=True)
    (clone / "pyproject.toml").write_text('[project]\nname = "repro-kit"\n')
    assert kit_checkout(clone / "runs" / "x") == clone
    assert kit_checkout(tmp_path / "elsewhere") is None
    assert suggested_checkout(clone) == "../results"
    assert suggested_checkout(clone / "runs") == "../../results"
    assert suggested_checkout(tmp_path) == "results"
