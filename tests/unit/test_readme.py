"""The README says what the code does: exit codes, layout, file paths."""

from __future__ import annotations

import re

from kit import LAYERS
from kit.errors import ExitCode
from tests.support import REPO

ROOT = REPO
README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(title: str, text: str = README) -> str:
    """The body of the level-2 section called title (up to the next level-2 heading)."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f'README.md has no "## {title}" section'
    return match.group(1)


def exit_code_rows() -> list[tuple[int, str]]:
    """(code, meaning) for each row of the README's "Exit codes" table, in order."""
    rows = re.findall(r"^\|\s*(\d+)\s*\|\s*(.*?)\s*\|\s*$", section("Exit codes"), re.MULTILINE)
    return [(int(code), meaning) for code, meaning in rows]


def test_exit_code_table_lists_exactly_exitcode():
    rows = exit_code_rows()
    codes = [code for code, _ in rows]
    documented = set(codes)
    members = {int(m): m.name for m in ExitCode}
    missing = [f"{members[c]}={c}" for c in sorted(set(members) - documented)]
    unknown = sorted(documented - set(members))
    assert not missing, f"ExitCode members missing from the README's table: {missing}"
    assert not unknown, f"README lists codes that ExitCode does not have: {unknown}"
    assert len(codes) == len(documented), f"README lists a code twice: {codes}"
    assert codes == sorted(codes), f"README's exit codes are out of order: {codes}"
    empty = [code for code, meaning in rows if not meaning]
    assert not empty, f"README gives no meaning for exit codes {empty}"


def test_readme_links_architecture():
    assert "(ARCHITECTURE.md)" in README, "README.md should link ARCHITECTURE.md"
    assert (ROOT / "ARCHITECTURE.md").is_file()


def test_layout_section_names_every_package():
    layout = section("Layout")
    named = {"kit." + m.group(1) for m in re.finditer(r"`kit/([\w.]+?)(?:/|\.py)`", layout)}
    missing = sorted(set(LAYERS) - named)
    assert not missing, f'README "Layout" does not name {missing} (kit.LAYERS)'


def test_kit_paths_in_readme_exist():
    """No path to a module that moved (e.g. the flat kit/sshsig.py of before the packages)."""
    paths = {p.rstrip(".") for p in re.findall(r"(?<![\w/.-])kit/[\w/.]*", README)}
    stale = sorted(p for p in paths if not (ROOT / p).exists())
    assert not stale, f"README.md names kit paths that do not exist: {stale}"


def test_test_benchmark_and_script_paths_in_docs_exist():
    """Paths under tests/, benchmarks/ and scripts/ named in README.md and ARCHITECTURE.md."""
    pattern = r"(?<![\w/.-])(?:tests|benchmarks|scripts)/[\w/.<>-]*\w"
    stale = []
    for doc in ("README.md", "ARCHITECTURE.md"):
        text = (ROOT / doc).read_text(encoding="utf-8")
        for p in sorted(set(re.findall(pattern, text))):
            if "<" not in p and not (ROOT / p).exists():
                stale.append(f"{doc}: {p}")
    assert not stale, f"docs name paths that do not exist: {stale}"


def test_development_names_the_tiers_and_the_ci_budget():
    """The README's test command, its tiers and CI's promise (`.ci/run` keeps it)."""
    dev = section("Development")
    for tier in ("tests/unit/", "tests/e2e/", "tests/system/"):
        assert f"`{tier}" in dev, f'README "Development" does not describe {tier}'
    assert "`.venv/bin/pytest tests/unit`" in dev and "minutes on an idle 2-core machine" in dev
    assert "under 30 minutes" in dev and "ci: <stage> took N s" in dev
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "REPRO_KIT_CI=1" in ci and "budget: 30 minutes" in ci
    for stage in ("unit", "e2e", "system"):
        assert f"stage {stage} " in ci, f".ci/run has no {stage} stage"


def test_readme_and_kit_name_no_shared_folder():
    """A user's clone has no ../shared: the README and the kit never point there."""
    found = [
        f"README.md:{n}" for n, line in enumerate(README.splitlines(), 1) if "../shared" in line
    ]
    for path in sorted((ROOT / "kit").rglob("*")):
        if path.is_file() and path.suffix in {".py", ".json", ".md", ".txt", ".toml"}:
            text = path.read_text(encoding="utf-8", errors="replace")
            found += [f"{path.relative_to(ROOT)}:{n}" for n, ln in enumerate(text.splitlines(), 1)
                      if "../shared" in ln]  # fmt: skip
    assert not found, f"'../shared' named in: {found}"


def test_readme_tells_how_to_put_repro_kit_on_path_and_write_allowed_signers():
    assert "source .venv/bin/activate" in README
    assert 'namespaces=\\"repro-kit\\" $(cat ~/.ssh/id_ed25519.pub)" > allowed_signers' in README
