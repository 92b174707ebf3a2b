"""Expected cost of an mteb task: how many texts the model embeds, from mteb's statistics.

mteb ships descriptive statistics for its tasks (``task.metadata.descriptive_stats``, the JSON
files under ``mteb/descriptive_stats/<type>/<task>.json``). The cost of a task is the number of
texts embedded over its evaluation splits (and only the subsets it runs):

- STS, pair classification, bitext mining: two texts per sample (pair);
- retrieval and reranking: queries + corpus documents;
- classification: evaluation samples + training texts, capped at what mteb's undersampling
  embeds (n_experiments x samples_per_label x labels);
- summarization: human + machine summaries;
- anything else (clustering, ...): ``num_samples``.

A task without statistics costs ``DEFAULT_COST``, and the basis says why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

DEFAULT_COST = 10_000
PAIR_TYPES = frozenset({"STS", "PairClassification", "BitextMining"})
CLASSIFICATION_TYPES = frozenset({"Classification", "MultilabelClassification"})


def _blocks(stats: Mapping[str, Any], split: str, subsets: Sequence[str]) -> list[dict[str, Any]]:
    """Stats of ``split`` for the subsets that run (the whole split when all of them run)."""
    block = stats.get(split)
    if not isinstance(block, dict):
        return []
    per = block.get("hf_subset_descriptive_stats") or {}
    if per and subsets and set(subsets) < set(per):
        return [per[s] for s in subsets if isinstance(per.get(s), dict)]
    return [block]


def _texts(block: Mapping[str, Any], task_type: str) -> int | None:
    n = block.get("num_samples")
    if not isinstance(n, int):
        return None
    if task_type in PAIR_TYPES:
        return 2 * n
    if isinstance(block.get("num_documents"), int) and isinstance(block.get("num_queries"), int):
        return block["num_documents"] + block["num_queries"]
    summaries = [
        (block.get(k) or {}).get("unique_texts")
        for k in ("human_summaries_statistics", "machine_summaries_statistics")
    ]
    counted = [s for s in summaries if isinstance(s, int)]
    if task_type == "Summarization" and len(counted) == len(summaries):
        return sum(counted)
    return n


def _train_texts(blocks: Iterable[Mapping[str, Any]], per_label: int | None) -> int | None:
    total = 0
    for block in blocks:
        n = block.get("num_samples")
        if not isinstance(n, int):
            return None
        labels = (block.get("label_statistics") or {}).get("unique_labels")
        total += min(n, per_label * labels) if per_label and isinstance(labels, int) else n
    return total


def estimate(
    task_type: str,
    eval_splits: Sequence[str],
    subsets: Sequence[str],
    stats: Mapping[str, Any] | None,
    train_split: str | None = None,
    undersample_per_label: int | None = None,
) -> tuple[int, str]:
    """(cost in texts, basis) of one task from its descriptive statistics (plain data)."""
    if not stats:
        return DEFAULT_COST, f"no descriptive statistics in mteb: default {DEFAULT_COST} texts"
    total, parts = 0, []
    for split in eval_splits:
        blocks = _blocks(stats, split, subsets)
        counts = [_texts(b, task_type) for b in blocks]
        if not blocks or any(c is None for c in counts):
            return DEFAULT_COST, (
                f"no statistics for split '{split}' in mteb: default {DEFAULT_COST} texts"
            )
        texts = sum(c for c in counts if c is not None)
        total += texts
        parts.append(f"{texts} {split}")
    if task_type in CLASSIFICATION_TYPES and train_split and train_split not in eval_splits:
        train = _train_texts(_blocks(stats, train_split, subsets), undersample_per_label)
        if train:
            total += train
            parts.append(f"{train} {train_split}")
    unit = "texts (2 per pair)" if task_type in PAIR_TYPES else "texts"
    return max(1, total), f"{' + '.join(parts)} {unit}, mteb descriptive statistics"


def task_costs(tasks: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """``{task name: {"cost": texts, "basis": why}}`` for mteb task objects."""
    out = {}
    for task in tasks:
        md = task.metadata
        try:
            stats = md.descriptive_stats
        except (OSError, ValueError):
            stats = None
        n_exp, per_label = (
            getattr(task, "n_experiments", None),
            getattr(task, "samples_per_label", None),
        )
        cap = n_exp * per_label if isinstance(n_exp, int) and isinstance(per_label, int) else None
        cost, basis = estimate(
            str(md.type),
            list(task.eval_splits),
            list(getattr(task, "hf_subsets", None) or []),
            stats,
            getattr(task, "train_split", None),
            cap,
        )
        out[md.name] = {"cost": cost, "basis": basis}
    return out
