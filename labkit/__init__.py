"""labkit: a notebook-first lab for symmetry and dynamics in scientific machine learning.

``import labkit`` is cheap: it loads no torch, plotting or widget library. Import the
sub-packages you need::

    from labkit.core import resolve_device, make_generator
    from labkit.reports import record
"""

from labkit.errors import (
    ConfigError,
    DataError,
    DivergenceError,
    LabkitError,
    ParameterError,
    RunFailedError,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataError",
    "DivergenceError",
    "LabkitError",
    "ParameterError",
    "RunFailedError",
    "__version__",
]
