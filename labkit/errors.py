"""The exceptions labkit raises. Every one of them derives from :class:`LabkitError`.

Messages quote the offending value and say what was expected, so that a user can fix
the call without reading labkit's source.
"""

from __future__ import annotations


class LabkitError(Exception):
    """Base class of every error labkit raises on purpose."""


class ConfigError(LabkitError, ValueError):
    """A configuration value is missing, of the wrong type or out of range."""


class ParameterError(LabkitError, ValueError):
    """A notebook parameter is unknown or of the wrong type (raised before any kernel starts)."""


class DataError(LabkitError, ValueError):
    """Input data are malformed: a bad row, a checksum mismatch, non-finite values."""


class DivergenceError(LabkitError, FloatingPointError):
    """A numerical computation diverged (non-finite values or values beyond a bound)."""


class StepLimitError(LabkitError, RuntimeError):
    """An adaptive integrator ran out of steps (``max_steps``) before the end of its
    interval. Not a divergence: the state was finite and within the bound; raise
    ``max_steps`` or loosen the tolerances."""


class CheckpointError(LabkitError, RuntimeError):
    """A checkpoint cannot be read (truncated, corrupt, not labkit's), or it was written by
    another run (other data or settings); the message names the file."""


class RunFailedError(LabkitError, RuntimeError):
    """A notebook run failed; ``run_dir`` holds the partial notebook and ``run.json``."""

    def __init__(self, message: str, run_dir: str | None = None) -> None:
        super().__init__(message)
        self.run_dir = run_dir


class FolderBusyError(LabkitError, RuntimeError):
    """Another process (named by PID and host) is writing into the same output folder."""
