"""The mteb edge of ``verify --recompute``: load a task and its data, and mteb's scorers.

``MtebEdge`` loads a task by name from the local HF cache (the caller goes offline first) and
says which dataset revision ``datasets`` really loaded; it is ``kit.verify.recompute.Edge``
for the scoring functions that are module-level names in mteb (the retrieval evaluator,
the k-fold split of cross-validated classification, the clustering metrics).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kit.errors import ExitCode, KitError
from kit.machine.dataloads import record_dataset_loads


class MtebEdge:
    """``kit.verify.recompute.Edge`` and ``kit.verify.predcheck.TaskSource`` over mteb."""

    def load_task(self, name: str) -> tuple[Any, str | None]:
        """The task with its data loaded, and the dataset revision really loaded."""
        import mteb

        try:
            task = mteb.get_task(name)
        except KeyError:
            raise KitError(
                f"{name}: not a task of mteb {mteb.__version__}", ExitCode.NOT_FOUND
            ) from None
        path = task.metadata.dataset["path"]
        try:
            with record_dataset_loads() as rec:
                task.load_data()
        except Exception as e:  # datasets raises many types for a cache miss
            raise KitError(
                f"{name}: dataset {path} is not in the local HF cache ({type(e).__name__}); "
                f"fetch it first: repro-kit prefetch --tasks {name}",
                ExitCode.DATA_MISSING,
            ) from None
        revisions = {d.revision_loaded for d in rec.loads if d.repo_id in (None, path)}
        revision = revisions.pop() if len(revisions) == 1 else task.metadata.dataset.get("revision")
        return task, revision

    def retrieval_scores(
        self, task: Any, split_data: Any, results: Any, split: str, subset: str
    ) -> dict[str, Any]:
        """mteb's retrieval scores of ``results`` (as ``AbsTaskRetrieval._evaluate_subset``)."""
        from mteb._evaluators import RetrievalEvaluator
        from mteb._evaluators.retrieval_metrics import make_score_dict
        from mteb.abstasks.retrieval import _filter_queries_without_positives
        from mteb.timing import TimingStack

        qrels, queries = _filter_queries_without_positives(
            split_data["relevant_docs"], split_data["queries"]
        )
        evaluator = RetrievalEvaluator(
            corpus=split_data["corpus"],
            queries=queries,
            task_metadata=task.metadata,
            hf_split=split,
            hf_subset=subset,
            top_ranked=split_data["top_ranked"],
            top_k=task._top_k,
            timer=TimingStack(),
        )
        all_scores, ndcg, _map, recall, precision, naucs, mrr, naucs_mrr, hit_rate = (
            evaluator.evaluate(
                qrels,
                results,
                task.k_values,
                ignore_identical_ids=task.ignore_identical_ids,
                skip_first_result=task.skip_first_result,
            )
        )
        task_scores = task.task_specific_scores(
            all_scores, qrels, results, hf_split=split, hf_subset=subset
        )
        return dict(
            make_score_dict(
                ndcg=ndcg,
                _map=_map,
                recall=recall,
                precision=precision,
                mrr=mrr,
                naucs=naucs,
                naucs_mrr=naucs_mrr,
                hit_rate=hit_rate,
                task_scores=task_scores,
                previous_results_model_meta=task._previous_results_model_meta,
            )
        )

    def kfold_val_indices(self, task: Any, n: int) -> list[list[int]]:
        """The validation rows of each fold, as mteb's cross-validation splits them."""
        from sklearn.model_selection import KFold  # type: ignore[import-untyped]

        splitter = KFold(n_splits=task.n_splits, shuffle=True, random_state=task.seed)
        return [val.tolist() for _, val in splitter.split(range(n))]

    def cluster_scores(self, labels: Any, assignment: Sequence[int]) -> dict[str, float]:
        """The metrics ``_evaluate_clustering_bootstrapped`` computes per draw."""
        from sklearn.metrics.cluster import (  # type: ignore[import-untyped]
            adjusted_mutual_info_score,
            v_measure_score,
        )

        return {
            "v_measure": float(v_measure_score(labels, assignment)),
            "ami": float(adjusted_mutual_info_score(labels, assignment)),
        }
