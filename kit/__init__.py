"""repro-kit: run MTEB and record everything that explains the score."""

__version__ = "0.1.0"
