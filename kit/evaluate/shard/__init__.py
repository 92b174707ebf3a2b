"""Sharding: which tasks shard I of N runs, and splitting the largest tasks inside themselves.

Task level: ``plan`` (``ShardSpec``, ``--shard I/N|auto`` from Slurm or Kubernetes, the
balanced assignment), ``cost`` (how many texts a task embeds, from mteb's descriptive
statistics). Within a task (``--within-tasks``): ``split`` (which tasks to split so the
largest shard is within 10% of the mean), ``batches`` (the encoder's own length-sorted
batches, who computes each, the keys), ``store`` (the append-only embedding store each shard
writes; the merged view the reduce reads), ``within`` (``MapEncoder``, ``ReduceEncoder``),
``mapreduce`` (the map in a shard's run, the reduce in ``repro-kit merge``; imports mteb).
"""
