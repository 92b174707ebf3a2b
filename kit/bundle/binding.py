"""What binds a task's predictions to its data, computed from a loaded mteb task object.

The producer (``kit.evaluate.runner``, after the task ran) and the reviewer
(``kit.verify.predcheck``, after loading the same task from the HF cache) call ``binding`` on
the task as mteb holds it after ``load_data()``: the same code on both sides, so equal data
gives equal records. The task object is used duck-typed (its class names say its kind:
``task_kind``); mteb is not imported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kit.bundle.predictions import Binding, PredictionsError, rows_sha256

# mteb abstract task class -> predictions kind; the first found in the task's MRO wins, so
# the subclasses whose predictions cannot be recomputed come first (README "Predictions").
_KINDS = (
    ("AbsTaskMultilabelClassification", None),
    ("AbsTaskRegression", None),
    ("AbsTaskSTS", "sts"),
    ("AbsTaskPairClassification", "pair_classification"),
    ("AbsTaskClassification", "classification"),
    ("AbsTaskRetrieval", "retrieval"),
    ("AbsTaskClusteringLegacy", "clustering_legacy"),
    ("AbsTaskClustering", "clustering"),
    ("AbsTaskBitextMining", "bitext_mining"),
)


def task_kind(task: Any) -> str | None:
    """The predictions kind of an mteb task (``predictions.KINDS``), None when unsupported."""
    names = {c.__name__ for c in type(task).__mro__}
    for cls, kind in _KINDS:
        if cls in names:
            return kind
    return None


def split_data(task: Any, split: str, subset: str) -> Any:
    """The evaluated rows, as ``AbsTask.evaluate`` picks them."""
    ds = task.dataset
    if subset not in ds and subset == "default":
        return ds[split]
    return ds[subset][split]


def pair_columns(task: Any, data: Any, names: Sequence[str]) -> list[list[Any]]:
    """Columns of a pair task's split (mteb's v1 layout, one row of lists, unpacked)."""
    if len(data) == 1 and task.metadata.modalities == ["text"]:
        return [list(data[0][n]) for n in names]
    return [list(data[n]) for n in names]


def queries_with_positives(split: Any) -> list[str]:
    """The query ids mteb scores (``_filter_queries_without_positives``), in order."""
    rel = split["relevant_docs"]
    return [q for q in split["queries"]["id"] if len(rel.get(q) or ()) > 0]


def binding(task: Any, kind: str, split: str, subset: str, revision: str | None) -> Binding:
    """The binding record of one (split, subset) of ``task`` as its data stands here."""
    data = split_data(task, split, subset)
    extra: dict[str, Any] = {"seed": getattr(task, "seed", None)}
    if kind == "sts":
        c1, c2 = task.column_names
        inputs: Any = zip(data[c1], data[c2], strict=True)
        gold, rows = data["score"], len(data)
        extra.update(min_score=task.min_score, max_score=task.max_score)
    elif kind == "pair_classification":
        names = [task.input1_column_name, task.input2_column_name, task.label_column_name]
        cols = pair_columns(task, data, names)
        inputs, gold, rows = zip(cols[0], cols[1], strict=True), cols[2], len(cols[2])
    elif kind == "classification":
        inputs, gold, rows = data[task.input_column_name], data[task.label_column_name], len(data)
        extra.update(n_experiments=task.n_experiments, cross_validation=task.is_cross_validation)
    elif kind == "retrieval":
        qids = queries_with_positives(data)
        dids = list(data["corpus"]["id"])
        inputs = [["q", q] for q in qids] + [["d", d] for d in dids]
        rel = data["relevant_docs"]
        gold = sorted([q, d, int(r)] for q in qids for d, r in rel[q].items())
        rows = len(qids)
        extra.update(
            k_values=list(task.k_values),
            ignore_identical_ids=task.ignore_identical_ids,
            skip_first_result=task.skip_first_result,
            corpus_rows=len(dids),
        )
    elif kind in ("clustering", "clustering_legacy", "bitext_mining"):
        label = getattr(task, "label_column_name", None) if kind != "bitext_mining" else "gold"
        cols = [c for c in data.column_names if c not in ("id", label)]
        inputs, rows = zip(*(data[c] for c in cols), strict=True), len(data)
        gold = data[label] if label in data.column_names else []
        if kind == "clustering":
            extra.update(
                n_clusters=task.n_clusters,
                max_documents_per_cluster=task.max_documents_per_cluster,
                max_fraction_of_documents_to_embed=task.max_fraction_of_documents_to_embed,
                max_document_to_embed=task.max_document_to_embed,
                max_depth=task.max_depth,
            )
    else:
        raise PredictionsError(f"{task.metadata.name}: no binding rule for task type {kind}")
    return Binding(
        dataset=str(task.metadata.dataset["path"]),
        revision=revision,
        split=split,
        subset=subset,
        rows=rows,
        inputs_sha256=rows_sha256(inputs),
        gold_sha256=rows_sha256(gold),
        extra=extra,
    )
