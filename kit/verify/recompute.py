"""Recompute a task's scores from mteb's saved predictions and the dataset's gold labels.

Every score comes from mteb's own scoring code, called on the loaded task object with the
task's own parameters: STS ``AbsTaskSTS._calculate_scores``; classification
``_calculate_scores`` per experiment and ``_calculate_avg_scores``; pair classification
``_compute_metrics``; retrieval ``RetrievalEvaluator.evaluate`` (k values,
``ignore_identical_ids``, ``skip_first_result``), ``task_specific_scores`` and
``make_score_dict``; clustering by replaying the task's seeded ``random.Random`` draws and
scoring with the metric functions mteb calls; legacy clustering and bitext mining
``_compute_metrics``. What needs mteb's module-level names arrives through ``Edge``
(``kit.verify.mtebedge``), so this module never imports mteb.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from kit.bundle.binding import pair_columns, queries_with_positives, split_data
from kit.bundle.predictions import TaskPredictions, payload_rows, unbound


class Edge(Protocol):
    """The mteb names recompute needs beyond the task object."""

    def retrieval_scores(
        self, task: Any, split_data: Any, results: Any, split: str, subset: str
    ) -> dict[str, Any]: ...

    def kfold_val_indices(self, task: Any, n: int) -> list[list[int]]: ...

    def cluster_scores(self, labels: Any, assignment: Sequence[int]) -> dict[str, float]: ...


@dataclass
class SubsetScores:
    """Scores recomputed for one (split, subset), and the metrics that cannot be, with why."""

    split: str
    subset: str
    scores: dict[str, Any]
    not_recomputable: dict[str, str] = field(default_factory=dict)


def _where(task: Any, split: str, subset: str) -> str:
    return f"{task.metadata.name} {split}/{subset}"


def _sts(task: Any, split: str, subset: str, payload: Any, _edge: Edge) -> dict[str, Any]:
    data = split_data(task, split, subset)
    normalized = list(map(task._normalize, data["score"]))
    return dict(task._calculate_scores(payload, normalized))


def _pair(task: Any, split: str, subset: str, payload: Any, _edge: Edge) -> dict[str, Any]:
    (labels,) = pair_columns(task, split_data(task, split, subset), [task.label_column_name])
    return dict(task._compute_metrics(payload, labels))


def _classification(task: Any, split: str, subset: str, payload: Any, edge: Edge) -> dict[str, Any]:
    labels = list(split_data(task, split, subset)[task.label_column_name])
    if len(payload) != task.n_experiments and not task.is_cross_validation:
        raise unbound(
            f"{_where(task, split, subset)}: {len(payload)} experiments, "
            f"the task runs {task.n_experiments}"
        )
    if task.is_cross_validation:
        folds = edge.kfold_val_indices(task, len(labels))
        gold = [[labels[i] for i in fold] for fold in folds]
    else:
        gold = [labels] * len(payload)
    if len(gold) != len(payload):
        raise unbound(f"{_where(task, split, subset)}: {len(payload)} folds, not {len(gold)}")
    scores = []
    for y_test, y_pred in zip(gold, payload, strict=True):
        if len(y_test) != len(y_pred):
            raise unbound(
                f"{_where(task, split, subset)}: {len(y_pred)} predicted labels, {len(y_test)} rows"
            )
        scores.append(task._calculate_scores(y_test, y_pred))
    return dict(task._calculate_avg_scores(scores))


def _retrieval(task: Any, split: str, subset: str, payload: Any, edge: Edge) -> dict[str, Any]:
    sd = split_data(task, split, subset)
    qids, corpus_ids = set(queries_with_positives(sd)), set(sd["corpus"]["id"])
    if set(payload) != qids:
        odd = sorted(set(payload) ^ qids)
        raise unbound(
            f"{_where(task, split, subset)}: predicted queries differ from the dataset's "
            f"({len(odd)} differ, e.g. {[q[:40] for q in odd[:3]]})"
        )
    for qid, docs in payload.items():
        if not docs.keys() <= corpus_ids:
            bad = [d[:40] for d in sorted(set(docs) - corpus_ids)[:3]]
            raise unbound(
                f"{_where(task, split, subset)}: query {qid[:40]} ranks documents not in the "
                f"corpus: {bad}"
            )
    results = {q: dict(d) for q, d in payload.items()}  # evaluate() drops identical ids in place
    return edge.retrieval_scores(task, sd, results, split, subset)


def _bitext(task: Any, split: str, subset: str, payload: Any, _edge: Edge) -> dict[str, Any]:
    data = split_data(task, split, subset)
    n = len(data)
    gold = (
        list(zip(range(n), range(n), strict=True))
        if "gold" not in data.column_names
        else data["gold"]
    )
    pair = "-".join(task._DEFAULT_PAIR[0])
    if pair not in payload or len(payload[pair]) != len(gold):
        raise unbound(f"{_where(task, split, subset)}: no {pair} predictions for {len(gold)} rows")
    if any(not 0 <= row["corpus_id"] < n for row in payload[pair]):
        raise unbound(f"{_where(task, split, subset)}: corpus_id out of range")
    return dict(task._compute_metrics(payload[pair], gold))


def _clustering_legacy(
    task: Any, split: str, subset: str, payload: Any, _edge: Edge
) -> dict[str, Any]:
    import numpy as np

    data = split_data(task, split, subset)
    if task.metadata.modalities != ["text"]:
        return dict(task._compute_metrics(data[task.label_column_name], payload))
    assignments = iter(payload)
    v_measures = []
    for labels in list(data[task.label_column_name]):
        if len(set(labels)) <= 1:  # mteb skips the set: v_measure 1.0, no assignment saved
            v_measures.append(1.0)
            continue
        assignment = next(assignments, None)
        if assignment is None or len(assignment) != len(labels):
            raise unbound(f"{_where(task, split, subset)}: assignments do not match the sets")
        v_measures.append(
            task._compute_metrics(labels, assignment, v_measure_only=True)["v_measure"]
        )
    if next(assignments, None) is not None:
        raise unbound(f"{_where(task, split, subset)}: more assignments than sets")
    return {
        "v_measure": np.mean(v_measures),
        "v_measure_std": np.std(v_measures),
        "v_measures": v_measures,
    }


def _drawn_rows(task: Any, rng: Any, n: int) -> list[int]:
    if task.max_document_to_embed is None and task.max_fraction_of_documents_to_embed is None:
        return list(range(n))
    k = (
        int(task.max_fraction_of_documents_to_embed * n)
        if task.max_fraction_of_documents_to_embed is not None
        else task.max_document_to_embed
    )
    return list(rng.sample(range(n), k=min(n, k)))


def _replay_clustering(
    task: Any, order: Sequence[tuple[str, str]], preds: TaskPredictions, edge: Edge
) -> dict[tuple[str, str], dict[str, Any]]:
    """Replay ``AbsTaskClustering``'s draws from ``random.Random(seed)`` over ``order``.

    The task's one generator runs through every (split, subset) the process evaluated, in
    that order; each gets ``sample`` (downsampling) and then ``choices`` per experiment.
    """
    import random

    import numpy as np

    rng = random.Random(task.seed)
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for split, subset in order:
        data = split_data(task, split, subset)
        idx = _drawn_rows(task, rng, len(data))
        col = data[task.label_column_name]
        labels = [col[i] if isinstance(col[i], list) else [col[i]] for i in idx]
        depth = max(map(len, labels))
        depth = min(task.max_depth, depth) if task.max_depth is not None else depth
        payload = preds.payloads.get((subset, split))
        per_metric: dict[str, dict[str, list[float]]] = {"v_measure": {}, "ami": {}}
        for level in range(depth):
            level_labels = np.array([lab[level] if len(lab) > level else -1 for lab in labels])
            level_labels = level_labels[np.array([x != -1 for x in level_labels])]
            name = f"Level {level}"
            drawn = payload.get(name, []) if payload else []
            for j in range(task.n_clusters):
                chosen = rng.choices(range(len(level_labels)), k=task.max_documents_per_cluster)
                if payload is None:
                    continue  # not in this file: only advance the generator
                if j >= len(drawn) or len(drawn[j]) != len(chosen):
                    raise unbound(
                        f"{_where(task, split, subset)} {name}: assignments do not match the "
                        "replayed samples"
                    )
                for metric, value in edge.cluster_scores(level_labels[chosen], drawn[j]).items():
                    per_metric[metric].setdefault(name, []).append(value)
        if payload is not None:
            out[(split, subset)] = _cluster_means(per_metric)
    return out


def _cluster_means(per_metric: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    import numpy as np

    result: dict[str, Any] = {}
    for metric, by_level in per_metric.items():
        flat = [v for vs in by_level.values() for v in vs]
        result["v_measures" if metric == "v_measure" else f"{metric}_scores"] = by_level
        result[metric] = float(np.mean(flat))
        result[f"{metric}_std"] = float(np.std(flat))
    return result


_PER_SUBSET: dict[str, Callable[[Any, str, str, Any, Edge], dict[str, Any]]] = {
    "sts": _sts,
    "pair_classification": _pair,
    "classification": _classification,
    "retrieval": _retrieval,
    "bitext_mining": _bitext,
    "clustering_legacy": _clustering_legacy,
}


def default_order(task: Any) -> list[tuple[str, str]]:
    """The (split, subset) order a fresh ``mteb.evaluate`` runs: splits, then subsets."""
    return [(split, subset) for split in task.eval_splits for subset in task.hf_subsets]


def recompute_task(
    task: Any,
    kind: str,
    preds: TaskPredictions,
    edge: Edge,
    *,
    rows: dict[tuple[str, str], int],
    top_k: int | None = None,
) -> list[SubsetScores]:
    """Scores of every (split, subset) in ``preds``, from mteb's functions on the loaded task.

    ``rows``: each (split, subset)'s row count here (from its binding); a payload predicting
    another number of rows is refused. ``top_k``: retrieval predictions were cut to the best
    ``top_k`` per query (metrics that need more are marked not recomputable).
    """
    out: list[SubsetScores] = []
    replayed = (
        _replay_clustering(task, default_order(task), preds, edge) if kind == "clustering" else {}
    )
    for (subset, split), payload in preds.payloads.items():
        n = payload_rows(kind, payload)
        if n is not None and n != rows.get((split, subset), n):
            raise unbound(
                f"{_where(task, split, subset)}: {n} predicted rows, the dataset has "
                f"{rows[(split, subset)]}"
            )
        if kind == "clustering":
            if (split, subset) not in replayed:
                raise unbound(f"{_where(task, split, subset)}: not a split/subset mteb evaluates")
            scores = replayed[(split, subset)]
        else:
            scores = _PER_SUBSET[kind](task, split, subset, payload, edge)
        task._add_main_score(scores)
        out.append(SubsetScores(split, subset, scores, not_recomputable(task, kind, top_k)))
    return out


def not_recomputable(task: Any, kind: str, top_k: int | None) -> dict[str, str]:
    """Metric marks (``@k`` or a suffix) that a top-k cut leaves not recomputable, with why."""
    if kind != "retrieval" or top_k is None or top_k >= max(task.k_values):
        return {}
    why = f"predictions keep the top {top_k} documents per query"
    marks = {f"@{k}": why for k in task.k_values if k > top_k}
    marks["_std"] = why + " (the std confidence uses every retrieved score)"
    return marks
