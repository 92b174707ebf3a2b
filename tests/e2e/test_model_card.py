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
         str(tmp_path / "results"), "--allow-unsigned", "--model-card", str(card)],
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
