"""Task-level sharding: which tasks shard I of N runs, balanced by each task's cost.

``plan`` (``ShardSpec``, ``--shard I/N|auto`` from Slurm or Kubernetes, the balanced
assignment), ``cost`` (how many texts a task embeds, from mteb's descriptive statistics).
"""
