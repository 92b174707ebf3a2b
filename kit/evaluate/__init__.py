"""Run mteb and record everything that explains the score, in a run folder.

The run: ``runner`` (``run_evaluation``: plan, resume, run each task, publish its files),
``record`` (``RunRecord``: run.json's one owner; every change to it goes through its methods),
``options`` (what the user asked for; a recording's settings as options and as arguments),
``faults`` (signals, disk, memory and corrupt-cache faults as documented exit codes, and what
run.json records of them), ``datasets`` (which dataset revisions were really loaded, with
their files' hashes), ``prefetch`` (fill the HF cache for an offline run), ``mteb_adapter``
(the edge to mteb and torch: tasks, model load, one task's run, result files),
``predictions`` (what the run keeps of mteb's per-sample predictions, and their binding).
``model/``: what the model is and how it loads (``source``: registry, folder or hub id;
``load``; ``identity``: content digest; ``encoder``: loader, pipeline and prompts;
``new_model``: mteb's metadata for a model mteb does not know; ``training``: a fine-tuned
folder's training record, checked against the declared training datasets).
``shard/``: sharding (``plan``: which tasks a shard runs; ``cost``: a task's size; within a
task: ``split`` which tasks to split, ``batches`` the encoder's own batches and their keys,
``store`` the embedding store, ``within`` the map and reduce encoders, ``mapreduce`` both
ends around mteb).

mteb is imported only in ``mteb_adapter``, ``model/source``, ``model/new_model``,
``model/training`` and ``shard/mapreduce`` (late, inside functions). Layer 2: may import
``kit.machine``, ``kit.bundle``, ``kit.signing`` and layer 0; never ``kit.verify`` or
``kit.container`` (its siblings), nor anything above.
"""
