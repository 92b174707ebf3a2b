"""The evidence format: a run folder packed into a deterministic, schema-checked bundle.

``archive`` (deterministic tar.gz writing, bounded in-memory reading), ``jsonread`` (the
strict JSON reader), ``records`` (a bundle's members, each parsed once), ``manifest`` (the
manifest built from a run folder or from parsed records: plain data in, plain data out),
``scores`` (task scores and benchmark means from mteb's raw files), ``within`` (a
within-task shard's index of its stored batches, and whether shards hold every batch once),
``schemas/`` (the JSON
Schemas), ``write`` (``write_bundle``, ``add_signature``; signing arrives as a ``Signer``
callable), ``predictions`` (the strict bounded reader of mteb's per-sample predictions, the
``Binding`` record and its check), ``binding`` (a loaded mteb task's binding, duck-typed),
``download`` (a bundle URL fetched under the archive's size bound, its sha256 checked before a
byte is parsed; urllib only), ``training`` (a fine-tune's training.json: the strict reader,
its binding to the model digest, the manifest's short form).
Layer 1: may import only ``kit.errors``, ``kit.fsio``, ``kit.runfolder`` and
``kit.__version__``; no SSH code, no mteb.
"""
