"""Run mteb and record everything that explains the score, in a run folder.

``runner`` (``run_evaluation``: plan, resume, run, record ``run.json`` and
``environment.json``), ``mteb_adapter`` (the one edge to mteb and torch), ``new_model``
(mteb's metadata for a local model folder), ``options``,
``provenance``, ``environment``, ``hfcache``, ``prefetch``, ``shard``, ``taskcost``, ``git``
(git asked in one place), ``docker_engine`` (docker behind small protocols) and ``container``
(build the images, run ``evaluate`` inside them), ``faults`` (signals, disk, memory and
corrupt-cache faults as documented exit codes; what run.json records of them).
Layer 1: may import only ``kit.errors``, ``kit.fsio`` and ``kit.__version__``; never a bundle,
a signature or the CLI. mteb, torch and docker are imported late, inside functions.
"""
