"""``repro-kit review``: a results pull request against the bundles attached to it.

``reviewer`` (``review_pull_request``: the steps in order), ``pullrequest`` (the base, HEAD and
the files changed under results/), ``bundles`` (each bundle fetched through
``kit.bundle.download`` and verified once), ``yielded`` (the bundles exported, as export does,
into a work tree of the base), ``compare`` (a file against its yield: the first difference,
what was removed), ``prrules`` (the repository's rules on the pull request's files),
``mtebstatus`` (superseded and beta tasks, the model registry), ``leaderboard`` (the row mteb's
table gives), ``verdict`` (per-file verdicts, the one-line verdict, the exit code and its
precedence), ``markdown`` (the comment). Part of ``kit.publish`` (layer 3).
"""
