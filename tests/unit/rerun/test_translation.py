"""A re-run on this host and one in an image read the bundle's recorded settings the same way.

``host_options`` (the host's ``EvalOptions``) and ``container_args`` (the image's
``repro-kit evaluate`` arguments) both come from ``options_from_recorded``; the argument list
is the one the kit always passed, and evaluate's own parser reads it back as the host's
options.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from kit.cli.evaluate import evaluate
from kit.evaluate.options import evaluate_args, options_from_recorded
from kit.rerun.execute import container_args, host_options
from kit.rerun.plan import RerunPlan, RerunRequest, RerunSettings, make_plan

HERE = {"cpu_model": "X", "threads": 8}


def _run(**over: Any) -> dict[str, Any]:
    run: dict[str, Any] = {
        "resolved": {
            "model": "org/m",
            "revision": "r1",
            "batch_size": 16,
            "precision": "fp16",
            "seed": 7,
            "device": "cuda:0",  # no device_kind: taken from the device
        },
        "options": {"allow_revision_mismatch": True},
        "tasks": [{"name": "A"}, {"name": "B"}, {"name": "C"}],
        "model": {"digest": "sha256:" + "d" * 64},
    }
    run.update(over)
    return run


def _plan(run: dict[str, Any], req: RerunRequest) -> RerunPlan:
    claimed = {"A": 0.5, "B": 0.25, "C": 0.75}
    return make_plan(run, {}, claimed, req, {"A": 1.0, "B": 1.0, "C": 1.0}, HERE)


def _parsed(args: list[str]) -> dict[str, Any]:
    """What evaluate's own parser makes of the arguments (raw flag values by name)."""
    ctx = evaluate.make_context("evaluate", list(args))
    return dict(ctx.params)


def test_a_registry_bundle_host_options_and_container_args_agree(tmp_path: Path) -> None:
    req = RerunRequest(tasks=("B", "A"), offline=True, hf_cache={"view": "/v"})
    plan = _plan(_run(), req)
    host = host_options(plan, req, tmp_path / "out")
    args = container_args(plan, req)
    # the argument list the kit passed before the translation was shared (bundle order)
    assert args == [
        "org/m",
        "--revision",
        "r1",
        "--tasks",
        "A,B",
        "--batch-size",
        "16",
        "--precision",
        "fp16",
        "--seed",
        "7",
        "--device",
        "cuda",
        "--overwrite",
        "-q",
        "--allow-revision-mismatch",
    ]
    assert evaluate_args(host) == args  # one translation for both
    assert (host.model, host.revision, host.model_name) == ("org/m", "r1", None)
    assert host.tasks == ("A", "B") and host.device == "cuda" and host.precision == "fp16"
    assert (host.batch_size, host.seed, host.allow_revision_mismatch) == (16, 7, True)
    assert host.output == tmp_path / "out" and host.offline and host.hf_cache == {"view": "/v"}
    assert host.overwrite and host.quiet and not host.inner_progress
    assert host.command == ["repro-kit", "verify", "--rerun"]
    p = _parsed(args)
    assert (p["model"], p["revision"], p["tasks"], p["device"]) == ("org/m", "r1", "A,B", "cuda")
    assert (p["batch_size"], p["precision"], p["seed"]) == (16, "fp16", 7)
    assert p["overwrite"] and p["quiet"] and p["allow_revision_mismatch"]
    assert p["model_name"] is None and not p["offline"]  # --offline is the launcher's


def test_a_local_model_bundle_names_the_folder_and_the_recorded_name(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    run = _run(model_source="local", options={})
    req = RerunRequest(model_path=folder)
    plan = _plan(run, req)
    host = host_options(plan, req, tmp_path / "out")
    args = container_args(plan, req)
    assert args == [
        "/model",
        "--model-name",
        "org/m",
        "--tasks",
        "A,B,C",
        "--batch-size",
        "16",
        "--precision",
        "fp16",
        "--seed",
        "7",
        "--device",
        "cuda",
        "--overwrite",
        "-q",
    ]
    assert host.model == str(folder.resolve()) and host.model_name == "org/m"
    assert host.revision is None and not host.allow_revision_mismatch
    assert evaluate_args(dataclasses.replace(host, model="/model")) == args
    p = _parsed(args)
    assert (p["model"], p["model_name"], p["revision"]) == ("/model", "org/m", None)


def test_recorded_settings_are_the_plans_settings() -> None:
    settings = RerunSettings.from_run(_run())
    assert settings.to_json() == {
        "model": "org/m",
        "revision": "r1",
        "batch_size": 16,
        "precision": "fp16",
        "seed": 7,
        "device_kind": "cuda",
        "allow_revision_mismatch": True,
        "model_source": "registry",
        "model_digest": "sha256:" + "d" * 64,
    }
    opts = options_from_recorded(settings, ("A",))
    assert evaluate_args(opts)[:3] == ["org/m", "--revision", "r1"]
