"""`export --model-card`: mteb's own model card function over the bundle's verified scores."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path


def test_export_writes_mteb_s_model_card_with_the_verified_scores(
    biosses_bundle: Path, tmp_path: Path
) -> None:
    card = tmp_path / "README.md"
    proc = subprocess.run(
        [sys.executable, "-m", "kit", "export", str(biosses_bundle), "--results-repo",
         str(tmp_path / "results"), "--init", "--allow-unsigned", "--model-card", str(card)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    text = card.read_text()
    assert text.startswith("---\ntags:\n- mteb\n")  # mteb's card data
    with tarfile.open(biosses_bundle) as tar:
        f = tar.extractfile("manifest.json")
        assert f is not None
        manifest = json.loads(f.read())
    table = text[text.index("# MTEB Results") :]
    assert manifest["model"]["name"] in table
    scores = [t["main_score"] for t in manifest["tasks"].values()]
    mean = sum(scores) / len(scores)  # mteb's table: the mean over the bundle's tasks
    assert f"{mean:.6f}" in table, table
    # mteb's table has no column per task: one per task type (the mean of its tasks' scores),
    # their mean, and the mean over tasks, each recomputed here from the verified scores
    by_type: dict[str, list[float]] = {}
    for t in manifest["tasks"].values():
        by_type.setdefault(t["type"], []).append(t["main_score"])
    type_means = {k: sum(v) / len(v) for k, v in by_type.items()}
    row = _table_row(table, manifest["model"]["name"])
    assert row["Mean (Task)"] == f"{mean:.6f}", row
    assert row["Mean (TaskType)"] == f"{sum(type_means.values()) / len(type_means):.6f}", row
    for task_type, value in type_means.items():
        assert row[task_type] == f"{value:.6f}", (task_type, row)


def _table_row(table: str, model: str) -> dict[str, str]:
    """The model's row of mteb's Markdown table, by column header."""
    lines = [ln for ln in table.splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    (row,) = [ln for ln in lines[2:] if f"| {model} " in ln]
    return dict(zip(header, (c.strip() for c in row.strip("|").split("|")), strict=True))
