"""The submitter's question, "did I beat it?": a report against a baseline.

Against a reference in the ``baseline`` role, each task with a reference score is a win
(score above the baseline's by more than the tolerance), a tie (within it) or a loss; a win
on a task the model is not zero-shot on (it trained on the task or a similar one, by mteb's
rules: kit/verify/zeroshot.py) is counted, and said, apart. Each named mean is higher, tied
or lower at the mean tolerance. The verdict reads "beats the baseline on 2 of 3 tasks (1 not
zero-shot), mean +0.0139", the mean being the mean over the compared tasks of the deltas; it
beats the baseline when it wins more tasks than it loses and the mean delta is positive, else
"does not beat the baseline: 1 of 3 tasks won, 2 losses, mean -0.0040".
In the ``reproduction`` role (the default) the report stays pass / fail at the tolerance.
"""

from __future__ import annotations

from typing import Any

REPRODUCTION = "reproduction"
BASELINE = "baseline"
ROLES = (REPRODUCTION, BASELINE)
WIN, TIE, LOSS = "win", "tie", "loss"


def outcome(delta: float | None, tolerance: float) -> str | None:
    """win / tie / loss of one delta (score - baseline) at ``tolerance``; None: no reference."""
    if delta is None:
        return None
    if abs(delta) <= tolerance:
        return TIE
    return WIN if delta > 0 else LOSS


def mark_rows(
    rows: list[dict[str, Any]], means: list[dict[str, Any]], tol: float, mtol: float
) -> None:
    """Add each task's ``result`` (win / tie / loss at ``tol``) and each mean's or task
    type's (at ``mtol``) in place."""
    for r in rows:
        r["result"] = outcome(r["delta"], tol)
    for m in means:
        m["result"] = outcome(m["delta"], mtol)


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Wins, ties and losses, the wins on tasks not zero-shot, the mean delta, the verdict."""
    compared = [r for r in rows if r.get("result") is not None]
    wins = [r["task"] for r in compared if r["result"] == WIN]
    dirty = [t for t in wins if _row(rows, t).get("zero_shot") is False]
    mean = sum(r["delta"] for r in compared) / len(compared) if compared else None
    losses = [r["task"] for r in compared if r["result"] == LOSS]
    out: dict[str, Any] = {
        "n_compared": len(compared),
        "wins": wins,
        "ties": [r["task"] for r in compared if r["result"] == TIE],
        "losses": losses,
        "wins_not_zero_shot": dirty,
        "mean_delta": mean,
        "beats": bool(wins) and len(wins) > len(losses) and (mean or 0) > 0,
    }
    out["text"] = verdict(out)
    return out


def verdict(s: dict[str, Any]) -> str:
    """ "beats the baseline on 2 of 3 tasks (1 not zero-shot), mean +0.0139"."""
    n, wins = s["n_compared"], len(s["wins"])
    dirty = f" ({len(s['wins_not_zero_shot'])} not zero-shot)" if s["wins_not_zero_shot"] else ""
    mean = f", mean {s['mean_delta']:+.4f}" if s["mean_delta"] is not None else ""
    tasks = f"{n} task{'' if n == 1 else 's'}"
    if s["beats"]:
        return f"beats the baseline on {wins} of {tasks}{dirty}{mean}"
    rest = "".join(
        f", {len(s[key])} {word}{'' if len(s[key]) == 1 else plural}"
        for key, word, plural in (("ties", "tie", "s"), ("losses", "loss", "es"))
        if s[key]
    )
    return f"does not beat the baseline: {wins} of {tasks} won{dirty}{rest}{mean}"


def zero_shot_text(zs: dict[str, Any]) -> str:
    """One line: mteb's zero-shot percentage and the tasks the model is not zero-shot on."""
    tasks = zs["tasks"]
    if zs["percentage"] is None:
        return f"unknown ({zs['note']})"
    trained = sorted(t for t, z in tasks.items() if z is False)
    not_on = f"; not zero-shot on {', '.join(trained)}" if trained else ""
    return f"{zs['percentage']} % of the {len(tasks)} task(s) (mteb's rule){not_on}"


def _row(rows: list[dict[str, Any]], task: str) -> dict[str, Any]:
    return next(r for r in rows if r["task"] == task)
