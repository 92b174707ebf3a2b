"""Check a bundle and compare its scores: the gate every consumer of a bundle goes through.

``checks`` (archive, signature, schema, integrity, records, scores, aggregates, consistency,
summary, complete, reference, in order, as a ``VerifyReport``; ``check_bundle``/
``require_verified`` hand on a ``VerifiedBundle``: the records every check read, each member
parsed once, with the recomputed task scores), ``consistency`` (the records agree, with
mteb's task layouts from ``tasklayout``), ``reference`` (published scores, the shipped ones
in ``published/`` for ``--reference published``, and the tolerance comparison), ``compare``
(why two runs differ: environment first, then score deltas, then the samples that moved:
``predcompare``). ``verify --recompute``: ``predcheck`` (per task:
binding, recompute, match), ``recompute`` (mteb's scoring functions on a loaded task),
``scorematch`` (recomputed values against the raw file), ``mtebedge`` (loads tasks, mteb's
module-level scorers), ``zeroshot`` (zero-shot per task by mteb's rules, from the declared
training datasets and the ``adapted_from`` parent's). mteb is imported only in ``tasklayout``
(late, and only when its cache lacks a task), ``mtebedge`` and ``zeroshot`` (late).
Layer 2: may import ``kit.bundle``, ``kit.signing``, ``kit.machine`` and layer 0; never
``kit.evaluate`` or ``kit.container`` (the submitter's side, its siblings), ``kit.rerun``,
``kit.publish`` or ``kit.cli``.
"""
