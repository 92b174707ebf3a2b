"""User-facing errors and the documented exit codes.

Every failure a user can cause is raised as a ``KitError`` carrying one exit code;
the CLI prints its one-line message and exits with that code (no traceback).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented exit codes (README, "Exit codes")."""

    OK = 0
    INTERNAL = 1  # a bug in the kit: please report it
    USAGE = 2  # bad option or argument (click's own code too)
    NOT_FOUND = 3  # unknown model, task or benchmark; missing input file
    DATA_MISSING = 4  # offline and a model or dataset is not in the HF cache
    REVISION_MISMATCH = 5  # loaded revision differs from the pinned one
    UNFAITHFUL_TASK = 6  # the task cannot be loaded as mteb defines it
    OUTPUT = 7  # output not writable (at start or mid-run), or it holds another model's run
    EVALUATION_FAILED = 8  # mteb raised while running a task
    # bundle / verify
    UNSAFE_ARCHIVE = 10  # unsafe or corrupt archive (traversal, links, bombs, not a tar.gz)
    INTEGRITY = 11  # a listed file is missing, altered, or an unlisted file is present
    SCHEMA = 12  # a record does not match its JSON Schema (or a wrong format version)
    SCORES = 13  # manifest scores differ from those recomputed from mteb's raw files
    REFERENCE = 14  # scores differ from the reference beyond the tolerance
    SHARDS = 15  # shard bundles disagree (model, options, plan) or do not cover every task once
    INCONSISTENT = 16  # the bundle's records disagree (tasks, model, scores, splits, status)
    PARTIAL = 17  # a task or the run is not complete (failed, pending, interrupted)
    MODEL_DIGEST = 18  # model files differ from the bundle's content digest (re-run, export)
    # signatures
    UNSIGNED = 20  # no signature and --allow-unsigned not given
    BAD_SIGNATURE = 21  # the signature does not match the manifest
    KEY_NOT_ALLOWED = 22  # signed by a key not in allowed_signers (or not the identity)
    WRONG_NAMESPACE = 23  # signed under another namespace than "repro-kit"
    MALFORMED_SIGNATURE = 24  # not a parseable SSHSIG signature
    KEY_ERROR = 25  # private key unreadable, wrong passphrase, unsupported type, exists
    # per-sample predictions (verify --recompute)
    RECOMPUTE_MISMATCH = 26  # a score recomputed from the bundle's predictions differs from mteb's
    PREDICTIONS_UNBOUND = 27  # predictions do not line up with the data (rows, ids, revision, hash)
    # containers
    DOCKER = 30  # docker daemon unreachable, image missing, build failed
    RERUN_MISMATCH = 31  # a re-run score differs from the claimed one
    # review of a results pull request
    REVIEW_DIFFERS = 32  # a changed file differs from what a bundle yields, or something removed
    REVIEW_UNBACKED = 33  # a changed file that no bundle yields
    BUNDLE_DOWNLOAD = 34  # a bundle URL: unreachable, too large, no #sha256= or another sha256
    # export into the results repository
    EXPORT_RULES = 35  # a results-repository rule fails (export --check, or before writing)
    DRIFT = 36  # a replaced main score moves by more than 0.001 (export without --allow-drift)
    NOT_RESULTS_CHECKOUT = 37  # export: --results-repo is no results checkout (or is the kit's)
    # faults during a run (README, "Faults"): the run folder stays resumable
    DISK_FULL = 40  # no space left or quota exceeded (ENOSPC/EDQUOT) on the output or a cache
    INTERRUPTED = 41  # SIGTERM/SIGINT: recorded in run.json; the same command resumes
    CORRUPT_CACHE = 42  # a cached dataset or model file is corrupt or truncated
    OUT_OF_MEMORY = 43  # CPU MemoryError or GPU OutOfMemoryError: use a smaller --batch-size


class KitError(Exception):
    """An error caused by input or environment, reported as one line."""

    def __init__(self, message: str, code: ExitCode = ExitCode.INTERNAL) -> None:
        super().__init__(message)
        self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""
