"""This machine and checkout: hardware and software, git, the Hugging Face cache.

``environment`` (what environment.json records: hardware, packages, torch settings, an
allow-list of variables with secrets masked), ``git`` (the one place ``git`` runs: revision,
dirty state, a training repository's state with credentials stripped), ``hfcache`` (the
embedded default model laid into a cache, a writable view of a read-only cache, snapshot
look-up), ``project`` (``repro-kit.toml``: the settings the commands run in a folder share),
``dataloads`` (the dataset revisions ``datasets`` really loaded). Layer 1: may import only
layer 0.
"""
