"""Re-run tasks of a verified bundle with the settings it records and compare the scores.

Pick the tasks (named, all, or a seeded draw that prefers cheap ones: kit/sample.py), plan
them with expected times, run them on this host (kit/runner.py) or in the recorded image
(kit/container.py), recompute the re-run's scores from mteb's files exactly as verify does,
and compare each with the claimed one. The bundle under review is only read (its sha256 is
checked before and after); the re-run's own run folder can become a review bundle whose
run.json records what it reviewed.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.errors import ExitCode, KitError
from kit.fsio import atomic_write_json, sha256_bytes, sha256_file
from kit.manifest import MANIFEST

Log = Callable[[str], None]
LOCK_LABEL = "dev.repro-kit.lockfile-sha256"
FLAVOR_LABEL = "dev.repro-kit.flavor"


@dataclass
class RerunRequest:
    """What the reviewer asked for (plain data; the CLI fills it)."""

    tasks: tuple[str, ...] = ()
    sample: int | None = None
    seed: int | None = None
    in_container: bool = False
    offline: bool = False
    output: Path | None = None
    tolerance: float = 0.001
    embedding_cache: bool = True
    hf_home: Path | None = None  # the HF cache a container mounts read-only
    hf_cache: dict[str, str] | None = None  # a read-only HF_HOME used through a view (host)
    dry_run: bool = False


@dataclass
class PlannedTask:
    name: str
    claimed: float
    expected_seconds: float
    basis: str


@dataclass
class RerunPlan:
    mode: str  # "host" or "container"
    settings: dict[str, Any]
    tasks: list[PlannedTask]
    selection: dict[str, Any]
    speed_factor: float
    speed_basis: str
    load_seconds: float
    cache: tuple[bool, str]
    image: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def expected_seconds(self) -> float:
        return self.load_seconds + sum(t.expected_seconds for t in self.tasks)


# -- planning (plain data) ------------------------------------------------------------------


def select_tasks(
    bundle_tasks: list[str],
    names: tuple[str, ...],
    sample: int | None,
    seed: int | None,
    costs: dict[str, float],
) -> list[str]:
    """The tasks to re-run: the named ones (or all), then a seeded cheap-first draw of them."""
    unknown = [n for n in names if n not in bundle_tasks]
    if unknown:
        raise KitError(
            f"not in the bundle: {', '.join(unknown)} (it has: {', '.join(bundle_tasks)})",
            ExitCode.NOT_FOUND,
        )
    pool = [n for n in bundle_tasks if n in names] if names else list(bundle_tasks)
    if sample is None:
        return pool
    from kit.sample import draw

    return draw({n: costs[n] for n in pool}, sample, 0 if seed is None else seed)


def speed_factor(bundle_env: dict[str, Any], here: dict[str, Any], device_kind: str) -> tuple:
    """How much longer a task takes here than on the bundle's machine (a simple estimate)."""
    if device_kind != "cpu":
        return 1.0, f"{device_kind}: not scaled"
    there_cpu = (bundle_env.get("hardware") or {}).get("cpu_model")
    there = (bundle_env.get("torch") or {}).get("num_threads") or 0
    mine = here.get("threads") or 0
    if there_cpu == here.get("cpu_model") and there == mine:
        return 1.0, "same CPU model and torch threads"
    if there and mine:
        factor = min(4.0, max(0.25, there / mine))
        return factor, f"torch threads {there} there vs {mine} here"
    return 1.0, "machines not comparable: not scaled"


def expected_times(
    run_tasks: dict[str, dict[str, Any]], names: list[str], costs: dict[str, float], factor: float
) -> list[tuple[float, str]]:
    """(seconds, basis) per task: its recorded duration, else its cost at the bundle's rate."""
    timed = [
        (t["duration_seconds"], costs.get(n))
        for n, t in run_tasks.items()
        if t.get("duration_seconds") and costs.get(n)
    ]
    rate = sum(d for d, _ in timed) / sum(c for _, c in timed) if timed else None
    out = []
    for n in names:
        d = run_tasks[n].get("duration_seconds")
        if d:
            out.append((d * factor, f"bundle {d:.1f} s x {factor:.2f}"))
        elif rate and costs.get(n):
            out.append((costs[n] * rate * factor, f"{costs[n]:.0f} texts at the bundle's rate"))
        else:
            out.append((0.0, "unknown"))
    return out


def make_plan(
    run: dict[str, Any],
    env: dict[str, Any],
    claimed: dict[str, float],
    req: RerunRequest,
    costs: dict[str, float],
    here: dict[str, Any],
) -> RerunPlan:
    from kit.embcache import decide

    resolved = run["resolved"]
    seed = req.seed
    if req.sample is not None and seed is None:
        seed = secrets.randbelow(2**31)
    bundle_tasks = [t["name"] for t in run["tasks"]]
    names = select_tasks(bundle_tasks, req.tasks, req.sample, seed, costs)
    kind = resolved.get("device_kind") or str(resolved["device"]).split(":")[0]
    factor, basis = speed_factor(env, here, kind)
    by_name = {t["name"]: t for t in run["tasks"]}
    times = expected_times(by_name, names, costs, factor)
    settings = {
        "model": resolved["model"],
        "revision": resolved["revision"],
        "batch_size": resolved["batch_size"],
        "precision": resolved["precision"],
        "seed": resolved["seed"],
        "device_kind": kind,
        "allow_revision_mismatch": bool((run.get("options") or {}).get("allow_revision_mismatch")),
    }
    return RerunPlan(
        mode="container" if req.in_container else "host",
        settings=settings,
        tasks=[PlannedTask(n, claimed[n], s, b) for n, (s, b) in zip(names, times, strict=True)],
        selection={
            "requested": list(req.tasks),
            "sample": req.sample,
            "seed": seed,
            "from": len(req.tasks) or len(bundle_tasks),
        },
        speed_factor=factor,
        speed_basis=basis,
        load_seconds=float((run.get("model") or {}).get("load_seconds") or 0.0) * factor,
        cache=decide(kind, settings["precision"], req.in_container, not req.embedding_cache),
    )


def plan_lines(plan: RerunPlan) -> list[str]:
    s = plan.settings
    sel = plan.selection
    how = (
        f"drawn {sel['sample']} of {sel['from']} with --seed {sel['seed']} (cheap tasks preferred)"
        if sel["sample"]
        else f"{len(plan.tasks)} task(s)"
    )
    lines = [
        f"re-run plan: {how} on {plan.mode}"
        + (f" in image {plan.image['image']}" if plan.image else "")
        + f"; {s['model']}@{s['revision']}, {s['device_kind']}, {s['precision']}, "
        f"batch {s['batch_size']}, seed {s['seed']}",
        f"  embedding cache {plan.cache[1]}",
        f"  speed: x{plan.speed_factor:.2f} ({plan.speed_basis}); model load ~"
        f"{plan.load_seconds:.0f} s",
    ]
    lines += [
        f"  {t.name:<40} claimed {t.claimed:.6f}  expected ~{t.expected_seconds:.0f} s ({t.basis})"
        for t in plan.tasks
    ]
    lines.append(f"  expected total ~{plan.expected_seconds:.0f} s")
    lines += [f"  note: {n}" for n in plan.notes]
    return lines


# -- the recorded image (pure decision, then docker at the edge) ----------------------------


def recorded_image(run: dict[str, Any], env: dict[str, Any]) -> dict[str, Any]:
    """Image ID, flavor and lockfile hash the bundle records (None where it does not)."""
    c = run.get("container") or {}
    labels = c.get("labels") or {}
    info = ((env.get("container") or {}).get("image")) or {}
    kind = (run.get("resolved") or {}).get("device_kind") or "cpu"
    return {
        "image_id": c.get("image_id"),
        "flavor": labels.get(FLAVOR_LABEL)
        or info.get("flavor")
        or ("cuda" if kind == "cuda" else "cpu"),
        "lockfile_sha256": labels.get(LOCK_LABEL) or info.get("lockfile_sha256"),
    }


def choose_image(
    recorded: dict[str, Any], local: list[dict[str, Any]], checkout_lock: str | None
) -> dict[str, Any]:
    """Use the recorded image if present, else an equivalent local one, else build; or refuse."""
    by_id = {img["id"]: img for img in local}
    if recorded["image_id"] and recorded["image_id"] in by_id:
        return {"action": "use", "image": recorded["image_id"], "why": "the recorded image ID"}
    want = recorded["lockfile_sha256"]
    flavor = recorded["flavor"]
    where = (
        f"image {recorded['image_id'][:19]} is not present here"
        if recorded["image_id"]
        else "the bundle was not made in an image"
    )
    if want and checkout_lock and want != checkout_lock:
        raise KitError(
            f"cannot re-run in the bundle's image: {where}, and it was built from lockfiles/"
            f"{flavor}.txt sha256 {want[:12]}, this checkout's is {checkout_lock[:12]}; a rebuild "
            "would not be the same image (check out the bundle's kit revision, or load its image)",
            ExitCode.DOCKER,
        )
    want = want or checkout_lock
    for img in sorted(local, key=lambda i: i["id"]):
        labels = img.get("labels") or {}
        if labels.get(LOCK_LABEL) == want and labels.get(FLAVOR_LABEL) == flavor:
            return {
                "action": "use",
                "image": img["id"],
                "why": f"{where}; local image {', '.join(img.get('tags') or [img['id'][:19]])} "
                f"has the same flavor ({flavor}) and lockfile sha256",
            }
    return {
        "action": "build",
        "image": f"repro-kit:{flavor}-rerun",
        "why": f"{where}; rebuilding {flavor} from this checkout's identical lockfile",
    }


def resolve_image(
    run: dict[str, Any], env: dict[str, Any], log: Log, build: bool = True
) -> dict[str, Any]:
    from kit import container

    client = container._client()
    recorded = recorded_image(run, env)
    lock = container.source_root() / "lockfiles" / f"{recorded['flavor']}.txt"
    checkout = hashlib.sha256(lock.read_bytes()).hexdigest() if lock.is_file() else None
    local = [
        {"id": i.id, "tags": i.tags, "labels": i.labels or {}}
        for i in client.images.list(filters={"label": LOCK_LABEL})
    ]
    if recorded["image_id"] and recorded["image_id"] not in {i["id"] for i in local}:
        try:  # present, but without our labels
            img = client.images.get(recorded["image_id"])
            local.append({"id": img.id, "tags": img.tags, "labels": img.labels or {}})
        except Exception:
            pass
    choice = choose_image(recorded, local, checkout)
    if choice["action"] == "build" and build:
        log(f"building {choice['image']}: {choice['why']}")
        info = container.build_image(
            container.BuildRequest(flavor=recorded["flavor"], tag=choice["image"]), log
        )
        choice = {**choice, "image": info["image_id"]}
    return {**choice, "recorded": recorded}


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


def _run_host(plan: RerunPlan, req: RerunRequest, out: Path, log: Log) -> dict[str, Any]:
    from kit.embcache import ExactEmbeddingCache
    from kit.options import EvalOptions
    from kit.runner import run_evaluation

    s = plan.settings
    opts = EvalOptions(
        model=s["model"],
        revision=s["revision"],
        tasks=tuple(t.name for t in plan.tasks),
        output=out,
        batch_size=s["batch_size"],
        device=s["device_kind"],
        precision=s["precision"],
        seed=s["seed"],
        offline=req.offline,
        overwrite=True,
        allow_revision_mismatch=s["allow_revision_mismatch"],
        quiet=True,
        inner_progress=False,
        hf_cache=req.hf_cache,
        command=["repro-kit", "verify", "--rerun"],
    )
    caches: list[ExactEmbeddingCache] = []

    def wrap(model: Any) -> Any:
        identity = {k: s[k] for k in ("model", "revision", "precision", "device_kind")}
        caches.append(ExactEmbeddingCache(model, out / ".embedding-cache", identity))
        return caches[-1]

    run_evaluation(
        opts, reporter=_PlanReporter(plan, log), wrap_model=wrap if plan.cache[0] else None
    )
    return {"used": bool(caches), "reason": plan.cache[1], **(caches[0].stats() if caches else {})}


def _run_container(plan: RerunPlan, req: RerunRequest, out: Path, log: Log) -> dict[str, Any]:
    from kit.container import RunRequest, run_evaluate

    s = plan.settings
    args = [
        s["model"],
        "--tasks",
        ",".join(t.name for t in plan.tasks),
        "--batch-size",
        str(s["batch_size"]),
        "--precision",
        s["precision"],
        "--seed",
        str(s["seed"]),
        "--device",
        s["device_kind"],
        "--overwrite",
        "-q",
    ]
    if s["revision"]:
        args[1:1] = ["--revision", s["revision"]]
    if s["allow_revision_mismatch"]:
        args.append("--allow-revision-mismatch")
    for t in plan.tasks:
        log(f"re-running {t.name} in the image: expected ~{t.expected_seconds:.0f} s")
    code = run_evaluate(
        RunRequest(
            image=plan.image["image"],
            network="none" if req.offline else "bridge",
            hf_home=req.hf_home,
            output=out,
            evaluate_args=args,
            gpus=s["device_kind"] == "cuda",
        ),
        log=log,
    )
    if code != 0:
        known = code in {int(c) for c in ExitCode}
        raise KitError(
            f"the re-run in image {plan.image['image'][:19]} failed (exit {code})",
            ExitCode(code) if known else ExitCode.EVALUATION_FAILED,
        )
    return {"used": False, "reason": plan.cache[1]}


def compare_scores(
    claimed: dict[str, float], rerun: dict[str, float], tolerance: float
) -> list[dict[str, Any]]:
    rows = []
    for name, want in claimed.items():
        got = rerun.get(name)
        delta = None if got is None else got - want
        rows.append(
            {
                "task": name,
                "claimed": want,
                "rerun": got,
                "delta": delta,
                "identical": got == want,
                "ok": delta is not None and abs(delta) <= tolerance,
            }
        )
    return rows


def _prepare_output(req: RerunRequest) -> tuple[Path, bool]:
    if req.output is None:
        return Path(tempfile.mkdtemp(prefix="repro-kit-rerun-")), True
    out = Path(req.output)
    run_json = out / "run.json"
    if run_json.is_file():
        try:
            previous = json.loads(run_json.read_text())
        except ValueError:
            previous = {}
        if "review" not in previous:
            raise KitError(
                f"{out} holds a run that is not a re-run; give an empty folder to --rerun-output",
                ExitCode.OUTPUT,
            )
    return out, False


def rerun_bundle(
    bundle: Path,
    report: Any,
    req: RerunRequest,
    log: Log,
    review_bundle: Path | None = None,
    sign: Callable[[bytes], str] | None = None,
    here: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Re-run tasks of a bundle that passed verify; return the comparison (plain data)."""
    from kit import mteb_adapter as mt
    from kit.taskcost import task_costs
    from kit.verify import load_members

    if not report.ok or report.manifest is None:
        raise KitError("the bundle must pass verify before a re-run", report.exit_code)
    bundle = Path(bundle)
    before = sha256_file(bundle)
    members = load_members(bundle)
    run = json.loads(members["run.json"])
    env = json.loads(members["environment.json"])
    claimed = {n: t["main_score"] for n, t in report.manifest["tasks"].items()}
    names = tuple(t["name"] for t in run["tasks"])
    mt.quiet_libraries()
    costs = {n: c["cost"] for n, c in task_costs(mt.resolve_tasks(names, None)).items()}
    plan = make_plan(run, env, claimed, req, costs, here or _here())
    if req.in_container:
        plan.image = resolve_image(run, env, log, build=not req.dry_run)
        if plan.image["why"] != "the recorded image ID":
            plan.notes.append(plan.image["why"])
    for line in plan_lines(plan):
        log(line)
    result: dict[str, Any] = {
        "plan": _plan_json(plan),
        "bundle_sha256": before,
        "tolerance": req.tolerance,
    }
    if req.dry_run:
        return {**result, "ok": True, "exit_code": 0, "tasks": [], "dry_run": True}
    out, temporary = _prepare_output(req)
    try:
        t0 = time.perf_counter()
        runner = _run_container if req.in_container else _run_host
        cache = runner(plan, req, out, log)
        wall = time.perf_counter() - t0
        from kit.compare import compare, load_side

        side = load_side(out)
        rows = compare_scores(
            {t.name: t.claimed for t in plan.tasks},
            {n: t["main_score"] for n, t in side["tasks"].items()},
            req.tolerance,
        )
        diffs = compare(load_side(bundle), side)["differences"]
        if sha256_file(bundle) != before:
            raise KitError(f"{bundle} changed during the re-run", ExitCode.INTEGRITY)
        ok = all(r["ok"] for r in rows)
        result.update(
            ok=ok,
            exit_code=int(ExitCode.OK if ok else ExitCode.RERUN_MISMATCH),
            tasks=rows,
            differences=diffs,
            embedding_cache=cache,
            wall_seconds=round(wall, 3),
            output=None if temporary else str(out),
        )
        _record_review(out, bundle, members, report, result)
        if review_bundle is not None:
            from kit.bundle import write_bundle

            info = write_bundle(out, review_bundle, sign)
            result["review_bundle"] = info
            log(
                f"wrote review bundle {info['path']} ({'signed' if info['signed'] else 'unsigned'})"
            )
    finally:
        if temporary:
            shutil.rmtree(out, ignore_errors=True)
    return result


def _here() -> dict[str, Any]:
    import torch

    from kit.environment import collect_environment

    return {
        "cpu_model": collect_environment()["hardware"]["cpu_model"],
        "threads": torch.get_num_threads(),
    }


def _plan_json(plan: RerunPlan) -> dict[str, Any]:
    return {
        "mode": plan.mode,
        "settings": plan.settings,
        "selection": plan.selection,
        "tasks": [
            {"task": t.name, "expected_seconds": round(t.expected_seconds, 1), "basis": t.basis}
            for t in plan.tasks
        ],
        "expected_seconds": round(plan.expected_seconds, 1),
        "speed_factor": plan.speed_factor,
        "speed_basis": plan.speed_basis,
        "embedding_cache": {"on": plan.cache[0], "reason": plan.cache[1]},
        "image": plan.image,
        "notes": plan.notes,
    }


def _record_review(
    out: Path, bundle: Path, members: dict[str, bytes], report: Any, result: dict[str, Any]
) -> None:
    """Write into the re-run's run.json what it reviewed and what it found."""
    path = out / "run.json"
    record = json.loads(path.read_text())
    record["review"] = {
        "reviewed_bundle": {
            "file": bundle.name,
            "sha256": result["bundle_sha256"],
            "manifest_sha256": sha256_bytes(members[MANIFEST]),
            "signer": report.signer,
            "model": report.manifest["model"]["name"],
            "revision": report.manifest["model"]["revision"],
        },
        "verify_checks": [{"name": c.name, "ok": c.ok, "reason": c.reason} for c in report.checks],
        "plan": result["plan"],
        "tolerance": result["tolerance"],
        "tasks": result["tasks"],
        "ok": result["ok"],
        "embedding_cache": result["embedding_cache"],
        "wall_seconds": result["wall_seconds"],
    }
    atomic_write_json(path, record)
