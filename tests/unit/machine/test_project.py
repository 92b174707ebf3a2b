"""repro-kit.toml: found from the working folder up, applied under the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.errors import ExitCode, KitError
from kit.machine.project import apply_project_config, find_project_config, read_project_config


def _write(folder: Path, text: str) -> Path:
    path = folder / "repro-kit.toml"
    path.write_text(text)
    return path


def test_found_in_a_parent_and_applied_under_the_environment(tmp_path: Path) -> None:
    _write(tmp_path, '[env]\nHF_HOME = ".cache/hf"\nHF_HUB_OFFLINE = "1"\nHF_TOKEN_PATH = "x"\n')
    below = tmp_path / "runs" / "deep"
    below.mkdir(parents=True)
    assert find_project_config(below) == tmp_path / "repro-kit.toml"
    environ = {"HF_TOKEN_PATH": "mine"}
    assert apply_project_config(environ, below) == tmp_path / "repro-kit.toml"
    assert environ["HF_HOME"] == str((tmp_path / ".cache" / "hf").resolve())  # from the file
    assert environ["HF_HUB_OFFLINE"] == "1"
    assert environ["HF_TOKEN_PATH"] == "mine"  # the environment wins


def test_no_file_changes_nothing(tmp_path: Path) -> None:
    environ: dict[str, str] = {}
    if find_project_config(tmp_path) is None:  # no repro-kit.toml above the temporary folder
        assert apply_project_config(environ, tmp_path) is None
        assert environ == {}


def test_booleans_and_absolute_paths(tmp_path: Path) -> None:
    path = _write(tmp_path, '[env]\nHF_HUB_OFFLINE = true\nHF_HOME = "/data/hf"\n')
    assert read_project_config(path) == {"HF_HUB_OFFLINE": "1", "HF_HOME": "/data/hf"}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[env]\nLD_PRELOAD = "x.so"\n', "LD_PRELOAD is not a setting"),
        ("[env]\nHF_HOME = [1]\n", "must be a string"),
        ('offline = "yes"\n', "unknown table or key 'offline'"),
        ("[env\n", "not valid TOML"),
    ],
)
def test_bad_files_are_usage_errors(tmp_path: Path, text: str, needle: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(KitError) as e:
        read_project_config(path)
    assert e.value.code == ExitCode.USAGE and needle in e.value.message
