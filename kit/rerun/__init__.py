"""Re-running tasks of a verified bundle and comparing the scores (``verify --rerun``).

``plan`` (pure: task choice, the recorded settings as ``RerunSettings``, expected times, score
comparison), ``execute`` (the I/O: image look-up and build, runs on the host or in a container
from one translation of those settings, the review record),
``sample`` (the seeded cheap-first draw), ``embcache`` (an embedding cache that cannot move a
score). Layer 3: imports ``kit.verify``, ``kit.evaluate``, ``kit.bundle``, ``kit.errors`` and
``kit.fsio`` below it; never ``kit.publish`` or ``kit.cli``, nor docker, torch or mteb directly.
"""
