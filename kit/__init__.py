"""repro-kit: run MTEB and record everything that explains the score.

Packages sit on layers (``LAYERS``, higher = nearer the user). A module imports only from
its own package or from packages on lower layers: never sideways into a sibling package
of the same layer, never upward. Only ``kit.cli`` imports click or rich. ``kit`` itself
(``__version__``, ``LAYERS``) may be imported by all and imports nothing, so keep it light.
``tests/unit/test_architecture.py`` enforces this; ARCHITECTURE.md explains the layout.
"""

__version__ = "0.1.0"

# Top-level module or package -> layer. Every kit/<name>/ and kit/<name>.py is listed here.
LAYERS: dict[str, int] = {
    "kit.__main__": 5,  # `python -m kit`
    "kit.cli": 4,  # command line: parse options, call the core, print results
    "kit.publish": 3,  # report, export, merge: consumers of verified bundles
    "kit.rerun": 3,  # re-run a bundle's tasks and compare the scores
    "kit.evaluate": 2,  # run mteb and record the run folder
    "kit.container": 2,  # build images, run evaluate in them, choose one for a re-run
    "kit.verify": 2,  # check a bundle; reference and environment comparison
    "kit.training": 2,  # a fine-tune's training record (training.json beside the weights)
    "kit.machine": 1,  # this machine: environment, git, the HF cache
    "kit.signing": 1,  # SSHSIG signatures, keys, allowed_signers
    "kit.bundle": 1,  # the evidence format: archive, manifest, scores, schemas
    "kit.runfolder": 0,  # the run folder's and results' names and paths; the digest rule
    "kit.errors": 0,  # ExitCode, KitError
    "kit.fsio": 0,  # atomic writes, hashing, canonical JSON
}
