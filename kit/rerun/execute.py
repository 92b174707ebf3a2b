"""Running a re-run: the I/O around ``kit.rerun.plan``.

Read the verified bundle, plan (``make_plan``), find or build the image for a container
re-run (``kit.container.choice.resolve_image``), run the tasks on this host
(``kit.evaluate.runner``) or in the image (``kit.container.launch``), recompute the
re-run's scores from mteb's files exactly as verify does, and compare each with the claimed
one. The bundle under review is only read (its sha256 is checked before and after); the
re-run's own run folder can become a review bundle whose run.json records what it reviewed.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kit.bundle.jsonread import parse
from kit.bundle.manifest import MANIFEST
from kit.errors import ExitCode, KitError
from kit.evaluate.record import attach_review, is_review
from kit.fsio import sha256_bytes
from kit.rerun.plan import RerunPlan, RerunRequest, compare_scores, make_plan, plan_lines
from kit.runfolder import RUN

if TYPE_CHECKING:
    from kit.bundle.write import BundleInfo
    from kit.evaluate.options import EvalOptions
    from kit.verify.checks import VerifyReport
    from kit.verify.verified import VerifiedBundle

Log = Callable[[str], None]


@dataclass(frozen=True)
class RerunResult:
    """What a re-run found: its plan, per-task comparison, cache use and review bundle.

    ``to_json()`` is the ``rerun`` object of ``verify --rerun --json``; a dry run has only
    plan, bundle_sha256, tolerance, ok, exit_code, tasks and dry_run.
    """

    plan: dict[str, Any]
    bundle_sha256: str
    tolerance: float
    ok: bool
    exit_code: int
    tasks: list[dict[str, Any]]
    differences: list[dict[str, Any]] | None = None
    samples: list[dict[str, Any]] | None = None  # re-run vs bundle, per sample (predictions)
    embedding_cache: dict[str, Any] | None = None
    wall_seconds: float | None = None
    output: str | None = None
    review_bundle: BundleInfo | None = None
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        """The result as plain data (the keys present depend on dry run / review bundle)."""
        out: dict[str, Any] = {
            "plan": self.plan,
            "bundle_sha256": self.bundle_sha256,
            "tolerance": self.tolerance,
            "ok": self.ok,
            "exit_code": self.exit_code,
            "tasks": self.tasks,
        }
        if self.dry_run:
            return {**out, "dry_run": True}
        out.update(
            differences=self.differences,
            samples=self.samples,
            embedding_cache=self.embedding_cache,
            wall_seconds=self.wall_seconds,
            output=self.output,
        )
        if self.review_bundle is not None:
            out["review_bundle"] = dataclasses.asdict(self.review_bundle)
        return out


# -- running (I/O) --------------------------------------------------------------------------


class _PlanReporter:
    """Says what each task is expected to take before it starts, rescaled as tasks finish."""

    def __init__(self, plan: RerunPlan, log: Log) -> None:
        self.expected = {t.name: t.expected_seconds for t in plan.tasks}
        self.log = log
        self.ratio = 1.0
        self.spent = [0.0, 0.0]  # observed, expected
        self.t0 = 0.0

    def start(self, total: int, done: int) -> None: ...

    def task_started(self, name: str) -> None:
        self.t0 = time.perf_counter()
        self.log(f"re-running {name}: expected ~{self.expected.get(name, 0) * self.ratio:.0f} s")

    def task_finished(self, name: str, score: float | None, skipped: bool) -> None:
        took = time.perf_counter() - self.t0
        if self.expected.get(name):
            self.spent[0] += took
            self.spent[1] += self.expected[name]
            self.ratio = self.spent[0] / self.spent[1]
        self.log(f"  {name}: {score if score is not None else float('nan'):.6f} in {took:.0f} s")

    def close(self) -> None: ...


def host_options(plan: RerunPlan, req: RerunRequest, out: Path) -> EvalOptions:
    """The options of a re-run on this host: the plan's settings and tasks, into ``out``."""
    from kit.evaluate.options import options_from_recorded

    folder = str(Path(req.model_path).resolve()) if req.model_path is not None else None
    return options_from_recorded(
        plan.settings,
        tuple(t.name for t in plan.tasks),
        model_folder=folder,
        output=out,
        offline=req.offline,
        hf_cache=req.hf_cache,
        command=["repro-kit", "verify", "--rerun"],
    )


def container_args(plan: RerunPlan, req: RerunRequest) -> list[str]:
    """The ``repro-kit evaluate`` arguments of a re-run in an image: the same translation as
    ``host_options``, the model folder (if any) at its mount point; the launcher adds the
    output, --offline (network none) and --no-bundle."""
    from kit.container.launch import CONTAINER_MODEL
    from kit.evaluate.options import evaluate_args, options_from_recorded

    folder = CONTAINER_MODEL if req.model_path is not None else None
    tasks = tuple(t.name for t in plan.tasks)
    return evaluate_args(options_from_recorded(plan.settings, tasks, model_folder=folder))


def _run_host(plan: RerunPlan, req: RerunRequest, out: Path, log: Log) -> dict[str, Any]:
    from kit.evaluate.runner import run_evaluation
    from kit.rerun.embcache import ExactEmbeddingCache

    s = plan.settings
    caches: list[ExactEmbeddingCache] = []

    def wrap(model: Any) -> Any:
        identity = {
            "model": s.model,
            "revision": s.revision,
            "model_digest": s.model_digest,
            "precision": s.precision,
            "device_kind": s.device_kind,
        }
        caches.append(ExactEmbeddingCache(model, out / ".embedding-cache", identity))
        return caches[-1]

    run_evaluation(
        host_options(plan, req, out),
        reporter=_PlanReporter(plan, log),
        wrap_model=wrap if plan.cache[0] else None,
    )
    return {"used": bool(caches), "reason": plan.cache[1], **(caches[0].stats() if caches else {})}


def _run_container(plan: RerunPlan, req: RerunRequest, out: Path, log: Log) -> dict[str, Any]:
    from kit.container.launch import RunRequest, run_evaluate

    assert plan.image is not None, "resolve_image first"
    image = plan.image.image
    for t in plan.tasks:
        log(f"re-running {t.name} in the image: expected ~{t.expected_seconds:.0f} s")
    code = run_evaluate(
        RunRequest(
            image=image,
            network="none" if req.offline else "bridge",
            hf_home=req.hf_home,
            output=out,
            evaluate_args=container_args(plan, req),
            gpus=plan.settings.device_kind == "cuda",
            model_dir=req.model_path,
        ),
        log=log,
    )
    if code != 0:
        known = code in {int(c) for c in ExitCode}
        raise KitError(
            f"the re-run in image {image[:19]} failed (exit {code})",
            ExitCode(code) if known else ExitCode.EVALUATION_FAILED,
        )
    return {"used": False, "reason": plan.cache[1]}


def _prepare_output(req: RerunRequest) -> tuple[Path, bool]:
    if req.output is None:
        return Path(tempfile.mkdtemp(prefix="repro-kit-rerun-")), True
    out = Path(req.output)
    run_json = out / RUN
    if run_json.is_file():
        try:
            previous = parse(run_json.read_bytes())
        except (OSError, ValueError):
            previous = {}
        if not is_review(previous):
            raise KitError(
                f"{out} holds a run that is not a re-run; give an empty folder to --rerun-output",
                ExitCode.OUTPUT,
            )
    return out, False


def rerun_bundle(
    bundle: VerifiedBundle,
    report: VerifyReport,
    req: RerunRequest,
    log: Log,
    review_bundle: Path | None = None,
    sign: Callable[[bytes], str] | None = None,
    here: Mapping[str, Any] | None = None,
) -> RerunResult:
    """Re-run tasks of a bundle that passed verify (``report``); compare with its claims.

    ``bundle`` is the ``VerifiedBundle`` verify handed on: the file is not read again.
    Logs the plan, then each task; with ``req.dry_run`` stops after planning. Writes the
    review record into the re-run's run.json and, if asked, a review bundle (signed with
    ``sign``). ``here`` overrides this machine's ``speed_profile`` (tests).
    """
    from kit.evaluate import mteb_adapter as mt
    from kit.evaluate.shard.cost import task_costs

    if not report.ok:
        raise KitError("the bundle must pass verify before a re-run", report.exit_code)
    before, run, env = bundle.sha256, bundle.run, bundle.environment
    claimed = {n: t["main_score"] for n, t in bundle.manifest["tasks"].items()}
    names = tuple(t["name"] for t in run["tasks"])
    mt.quiet_libraries()
    costs = {n: c["cost"] for n, c in task_costs(mt.resolve_tasks(names, None)).items()}
    plan = make_plan(run, env, claimed, req, costs, here or _here())
    check_model_folder(run, req.model_path)
    if req.in_container:
        from kit.container.choice import resolve_image

        plan.image = resolve_image(run, env, log, build=not req.dry_run)
        if not plan.image.is_recorded:
            plan.notes.append(plan.image.why)
    for line in plan_lines(plan):
        log(line)
    if req.dry_run:
        return RerunResult(plan.to_json(), before, req.tolerance, True, 0, [], dry_run=True)
    out, temporary = _prepare_output(req)
    try:
        t0 = time.perf_counter()
        runner = _run_container if req.in_container else _run_host
        cache = runner(plan, req, out, log)
        wall = time.perf_counter() - t0
        from kit.verify.compare import bundle_side, compare, load_side

        side = load_side(out)
        rows = compare_scores(
            {t.name: t.claimed for t in plan.tasks},
            {n: t["main_score"] for n, t in side["tasks"].items()},
            req.tolerance,
        )
        compared = compare(bundle_side(bundle), side)
        ok = all(r["ok"] for r in rows)
        result = RerunResult(
            plan=plan.to_json(),
            bundle_sha256=before,
            tolerance=req.tolerance,
            ok=ok,
            exit_code=int(ExitCode.OK if ok else ExitCode.RERUN_MISMATCH),
            tasks=rows,
            differences=compared["differences"],
            samples=compared["samples"],
            embedding_cache=cache,
            wall_seconds=round(wall, 3),
            output=None if temporary else str(out),
        )
        _record_review(out, bundle, report, result)
        if review_bundle is not None:
            from kit.bundle.write import write_bundle

            info = write_bundle(out, review_bundle, sign)
            result = dataclasses.replace(result, review_bundle=info)
            log(f"wrote review bundle {info.path} ({'signed' if info.signed else 'unsigned'})")
    finally:
        if temporary:
            shutil.rmtree(out, ignore_errors=True)
    return result


def check_model_folder(run: Mapping[str, Any], model_path: Path | None) -> None:
    """A local-model bundle re-runs only with a folder whose content digest is the bundle's.

    Checked before any task runs; the refusal names the first differing file.
    """
    from kit.evaluate.model.identity import digest_folder
    from kit.evaluate.model.source import check_folder
    from kit.runfolder import files_from_record, first_difference

    model = run.get("model") or {}
    if model_path is None:
        if run.get("model_source") == "local":
            raise KitError(
                f"this bundle evaluated a local model folder ({model.get('name')}); give the "
                "folder you were sent: --model-path DIR",
                ExitCode.USAGE,
            )
        return
    if not model.get("digest") or not model.get("files"):
        raise KitError(
            "--model-path: the bundle records no model content digest to check the folder "
            "against (made by an older repro-kit)",
            ExitCode.USAGE,
        )
    check_folder(Path(model_path))
    here = digest_folder(Path(model_path))
    if here.digest != model["digest"]:
        what = first_difference(files_from_record(model["files"]), here.files)
        raise KitError(
            f"--model-path {model_path} is not the bundle's model: digest {here.digest} != "
            f"{model['digest']} ({what}); refusing before any task runs",
            ExitCode.MODEL_DIGEST,
        )


def _here() -> dict[str, Any]:
    from kit.machine.environment import speed_profile

    return speed_profile()


def _record_review(
    out: Path, bundle: VerifiedBundle, report: VerifyReport, result: RerunResult
) -> None:
    """Write into the re-run's run.json what it reviewed and what it found."""
    attach_review(
        out,
        {
            "reviewed_bundle": {
                "file": bundle.path.name,
                "sha256": result.bundle_sha256,
                "manifest_sha256": sha256_bytes(bundle.members[MANIFEST]),
                "signer": bundle.signer.checked_json(),
                "model": bundle.manifest["model"]["name"],
                "revision": bundle.manifest["model"]["revision"],
            },
            "verify_checks": [
                {"name": c.name, "ok": c.ok, "reason": c.reason} for c in report.checks
            ],
            "plan": result.plan,
            "tolerance": result.tolerance,
            "tasks": result.tasks,
            "ok": result.ok,
            "embedding_cache": result.embedding_cache,
            "wall_seconds": result.wall_seconds,
        },
    )
