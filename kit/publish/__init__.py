"""Outputs built from verified bundles: report, export to MTEB's results repository, merge.

``report`` (the report model: scores, reference, verdict, signer, environment), ``html`` and
``markdown`` (its two renderings), ``export`` (mteb's files into a results checkout),
``merge`` (shard bundles into the bundle of one whole run), ``within_merge`` (within-task
shards: the plan check and the reduce, through ``kit.evaluate.shard.mapreduce``),
``resultsrepo`` (what a results checkout is; ``export --init``), ``nextstep`` (the export a
user runs next, as printed), ``reference`` (a reference built from a results checkout),
``review/`` (``repro-kit review``: a results pull request against the bundles attached to it,
each file backed, differing, removed or unbacked; its own docstring lists its modules). mteb is
imported only in ``export`` (model metadata, its registry), ``repomerge`` (mteb's result
merge), ``model_card`` (mteb's model card), ``reference`` (mteb's ResultCache),
``review/mtebstatus`` (superseded and beta tasks, the registry) and ``review/leaderboard``
(mteb's leaderboard table and zero-shot), late, inside functions.
Layer 3: may import ``kit.verify`` and the layers below; never its sibling ``kit.rerun``, nor
``kit.cli``. Printing and option parsing stay in the CLI.
"""
