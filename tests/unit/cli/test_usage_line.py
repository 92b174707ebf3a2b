"""Click's usage errors as the kit's one line (`repro-kit: error: ...`), exit 2, no class names."""

from __future__ import annotations

import re

import pytest

from kit.cli import main
from kit.errors import ExitCode

CLASS_NAME = re.compile(r"\b[A-Z][a-zA-Z]*(Error|Exception)\b")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["evaluate", "--batch-size", "0"], "--batch-size"),
        (["export", "b.tar.gz"], "--results-repo"),
        (["verify"], "BUNDLE_FILE"),
        (["evaluate", "--no-such-flag"], "--no-such-flag"),
        (["no-such-command"], "no-such-command"),
        (["evaluate", "--precision", "fp8"], "fp8"),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(
    args: list[str], needle: str, monkeypatch: pytest.MonkeyPatch, capsys, tmp_path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["repro-kit", *args])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == ExitCode.USAGE
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("repro-kit: error: "), err
    assert needle in lines[0] and "Usage:" not in err and not CLASS_NAME.search(err), err
