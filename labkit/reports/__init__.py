"""Headless runs: notebooks as parameterized reports, sweeps on dask, and ``record``.

::

    from labkit.reports import run_notebook, sweep
    run_notebook("notebooks/00_tour.ipynb", {"n_members": 32}, out_dir="reports/tour")
    sweep("notebooks/00_tour.ipynb", {"seed": [0, 1], "dt": [0.01, 0.005]})

Inside a notebook, ``record(name, value)`` hands a result to the run's ``run.json`` and
to the sweep's dataset. The ``labkit`` command (:mod:`labkit.reports.cli`) wraps these.
"""

from labkit.reports._lock import FolderLock
from labkit.reports._params import (
    Parameter,
    check_parameters,
    notebook_digest,
    notebook_parameters,
    parse_yaml,
)
from labkit.reports._record import read_records, record
from labkit.reports._run import RunResult, RunState, inspect_run, read_run, run_notebook
from labkit.reports._sweep import SweepResult, grid_points, load_grid, sweep, sweep_status

__all__ = [
    "FolderLock",
    "Parameter",
    "RunResult",
    "RunState",
    "SweepResult",
    "check_parameters",
    "grid_points",
    "inspect_run",
    "load_grid",
    "notebook_digest",
    "notebook_parameters",
    "parse_yaml",
    "read_records",
    "read_run",
    "record",
    "run_notebook",
    "sweep",
    "sweep_status",
]
