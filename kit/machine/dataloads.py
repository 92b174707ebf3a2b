"""Which dataset revisions ``datasets`` really materialised (offline it takes the newest
cached copy whatever revision was asked for).

``record_dataset_loads`` watches every ``DatasetBuilder.as_dataset`` call inside a block.
The run records what it loaded (``kit.evaluate.datasets``); ``verify --recompute`` checks
that the data it loads is the revision the predictions were made on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class DatasetLoad:
    """One config of one dataset as ``datasets`` materialised it."""

    repo_id: str | None
    config: str
    revision_loaded: str | None
    cache_dir: str


@dataclass
class LoadRecorder:
    loads: list[DatasetLoad] = field(default_factory=list)


@contextlib.contextmanager
def record_dataset_loads() -> Iterator[LoadRecorder]:
    """Record every ``DatasetBuilder.as_dataset`` call made inside the block."""
    import datasets.builder

    recorder = LoadRecorder()
    original = datasets.builder.DatasetBuilder.as_dataset

    def as_dataset(self: Any, *args: Any, **kwargs: Any) -> Any:
        load = DatasetLoad(
            repo_id=getattr(self, "repo_id", None),
            config=getattr(getattr(self, "config", None), "name", "default"),
            revision_loaded=getattr(self, "hash", None),
            cache_dir=str(getattr(self, "_cache_dir", "")),
        )
        if load not in recorder.loads:
            recorder.loads.append(load)
        return original(self, *args, **kwargs)

    datasets.builder.DatasetBuilder.as_dataset = as_dataset
    try:
        yield recorder
    finally:
        datasets.builder.DatasetBuilder.as_dataset = original
