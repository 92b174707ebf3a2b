"""Planning a re-run: plain data and pure decisions (no I/O, no docker, no torch, no mteb).

Which tasks to re-run (named, all, or a seeded cheap-first draw: ``kit.rerun.sample``), how
long each should take here, the settings the bundle records, and how re-run scores compare
with the claimed ones. ``kit.rerun.execute`` does the I/O around these; the image a container
re-run uses is ``kit.container.choice``'s decision.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kit.errors import ExitCode, KitError
from kit.evaluate.options import RecordedSettings
from kit.rerun.embcache import decide
from kit.rerun.sample import draw

if TYPE_CHECKING:
    from kit.container.choice import ImageChoice


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
    model_path: Path | None = None  # the folder of a local-model bundle, checked by digest


@dataclass
class PlannedTask:
    """One task of the plan: its claimed score and how long it should take here."""

    name: str
    claimed: float
    expected_seconds: float
    basis: str


@dataclass(frozen=True)
class RerunSettings(RecordedSettings):
    """The settings a re-run repeats (``RecordedSettings``), and the model's source and digest."""

    model_source: str
    model_digest: str | None

    @classmethod
    def from_run(cls, run: Mapping[str, Any]) -> RerunSettings:
        """The settings a bundle's run record gives (its ``resolved``, options and model)."""
        resolved = run["resolved"]
        return cls(
            model=resolved["model"],
            revision=resolved["revision"],
            batch_size=resolved["batch_size"],
            precision=resolved["precision"],
            seed=resolved["seed"],
            device_kind=resolved.get("device_kind") or str(resolved["device"]).split(":")[0],
            allow_revision_mismatch=bool((run.get("options") or {}).get("allow_revision_mismatch")),
            model_source=run.get("model_source") or "registry",
            model_digest=(run.get("model") or {}).get("digest"),
        )

    def to_json(self) -> dict[str, Any]:
        """The plan's ``settings`` record."""
        return {
            "model": self.model,
            "revision": self.revision,
            "batch_size": self.batch_size,
            "precision": self.precision,
            "seed": self.seed,
            "device_kind": self.device_kind,
            "allow_revision_mismatch": self.allow_revision_mismatch,
            "model_source": self.model_source,
            "model_digest": self.model_digest,
        }


@dataclass
class RerunPlan:
    """What a re-run will do: mode, settings, tasks, expected times, cache and image."""

    mode: str  # "host" or "container"
    settings: RerunSettings
    tasks: list[PlannedTask]
    selection: dict[str, Any]
    speed_factor: float
    speed_basis: str
    load_seconds: float
    cache: tuple[bool, str]
    image: ImageChoice | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def expected_seconds(self) -> float:
        """Model load plus every task's expected time."""
        return self.load_seconds + sum(t.expected_seconds for t in self.tasks)

    def to_json(self) -> dict[str, Any]:
        """The plan as printed under ``rerun.plan`` and recorded in a review's run.json."""
        return {
            "mode": self.mode,
            "settings": self.settings.to_json(),
            "selection": self.selection,
            "tasks": [
                {"task": t.name, "expected_seconds": round(t.expected_seconds, 1), "basis": t.basis}
                for t in self.tasks
            ],
            "expected_seconds": round(self.expected_seconds, 1),
            "speed_factor": self.speed_factor,
            "speed_basis": self.speed_basis,
            "embedding_cache": {"on": self.cache[0], "reason": self.cache[1]},
            "image": self.image.to_json() if self.image is not None else None,
            "notes": self.notes,
        }


# -- planning (plain data) ------------------------------------------------------------------


def select_tasks(
    bundle_tasks: list[str],
    names: tuple[str, ...],
    sample: int | None,
    seed: int | None,
    costs: Mapping[str, float],
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
    return draw({n: costs[n] for n in pool}, sample, 0 if seed is None else seed)


def speed_factor(
    bundle_env: Mapping[str, Any], here: Mapping[str, Any], device_kind: str
) -> tuple[float, str]:
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
    run_tasks: Mapping[str, Mapping[str, Any]],
    names: list[str],
    costs: Mapping[str, float],
    factor: float,
) -> list[tuple[float, str]]:
    """(seconds, basis) per task: its recorded duration, else its cost at the bundle's rate."""
    timed = [
        (t["duration_seconds"], costs[n])
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
    run: Mapping[str, Any],
    env: Mapping[str, Any],
    claimed: Mapping[str, float],
    req: RerunRequest,
    costs: Mapping[str, float],
    here: Mapping[str, Any],
) -> RerunPlan:
    """The plan for ``req`` from the bundle's run and environment records (plain data).

    ``costs`` are the tasks' sizes (texts), ``here`` the machine's ``speed_profile``; a sample
    without a seed gets a fresh one, recorded in the plan's selection.
    """
    settings = RerunSettings.from_run(run)
    seed = req.seed
    if req.sample is not None and seed is None:
        seed = secrets.randbelow(2**31)
    bundle_tasks = [t["name"] for t in run["tasks"]]
    names = select_tasks(bundle_tasks, req.tasks, req.sample, seed, costs)
    kind = settings.device_kind
    factor, basis = speed_factor(env, here, kind)
    by_name = {t["name"]: t for t in run["tasks"]}
    times = expected_times(by_name, names, costs, factor)
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
        cache=decide(kind, settings.precision, req.in_container, not req.embedding_cache),
    )


def plan_lines(plan: RerunPlan) -> list[str]:
    """The plan as the lines logged before a re-run starts."""
    s = plan.settings
    sel = plan.selection
    how = (
        f"drawn {sel['sample']} of {sel['from']} with --seed {sel['seed']} (cheap tasks preferred)"
        if sel["sample"]
        else f"{len(plan.tasks)} task(s)"
    )
    lines = [
        f"re-run plan: {how} on {plan.mode}"
        + (f" in image {plan.image.image}" if plan.image else "")
        + f"; {s.model}@{s.revision}, {s.device_kind}, {s.precision}, "
        f"batch {s.batch_size}, seed {s.seed}",
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


# -- comparing -----------------------------------------------------------------------------


def compare_scores(
    claimed: dict[str, float], rerun: dict[str, float], tolerance: float
) -> list[dict[str, Any]]:
    """Per claimed task: the re-run score, the delta, identical, and within ``tolerance``."""
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
