"""Run one notebook headlessly as a parameterized report.

:func:`run_notebook` checks the parameters against the notebook's ``parameters`` cell
(before any kernel starts), executes it with papermill, and writes into ``out_dir``:

- ``<stem>.ipynb``: the executed notebook (kept, partial, when a cell fails);
- ``report.html``: a self-contained HTML report that renders offline;
- ``run.json``: parameters, git commit, package versions, device, timings, status,
  the error (cell and traceback) if any, and the recorded values.

Every file is written atomically, and ``run.json`` is written first with
``status: "running"``, so an interrupted run is visible as such.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import platform
import time
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from labkit.core.cache import atomic_write
from labkit.core.provenance import git_state
from labkit.errors import ConfigError, RunFailedError
from labkit.reports._html import notebook_to_html
from labkit.reports._params import check_parameters, notebook_parameters
from labkit.reports._record import read_records

__all__ = ["RunResult", "read_run", "run_notebook"]

RUN_FILE = "run.json"
REPORT_FILE = "report.html"
#: Packages whose versions go into ``run.json``.
_VERSIONED = ("labkit", "torch", "numpy", "scipy", "xarray", "plotly", "papermill", "nbclient",
              "ipykernel", "dask", "distributed")
#: The plotly renderer used in report kernels: a MIME bundle for JupyterLab plus
#: self-contained HTML (plotly.js inlined) for the offline report.
REPORT_PLOTLY_RENDERER = "plotly_mimetype+notebook"


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What :func:`run_notebook` produced.

    Attributes:
        out_dir: the run folder.
        status: ``"completed"`` or ``"failed"``.
        parameters: every parameter's value in the run (defaults and overrides).
        records: the values the notebook recorded with :func:`labkit.reports.record`.
        duration_s: wall time of the execution.
        error: for a failed run, ``cell_index`` (in the executed notebook), ``source``,
            ``ename``, ``evalue`` and ``traceback``.
    """

    out_dir: Path
    status: str
    parameters: dict[str, Any]
    records: dict[str, Any]
    duration_s: float
    error: dict[str, Any] | None = None

    @property
    def notebook(self) -> Path:
        """The executed notebook."""
        return self.out_dir / read_run(self.out_dir)["output_notebook"]

    @property
    def report(self) -> Path:
        """The HTML report."""
        return self.out_dir / REPORT_FILE


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def _device() -> dict[str, Any]:
    from labkit.core.device import describe_device

    return describe_device()


def read_run(out_dir: str | Path) -> dict[str, Any]:
    """The ``run.json`` of a run folder as a dictionary.

    Raises:
        ConfigError: when the folder has no ``run.json``.
    """
    import json

    path = Path(out_dir) / RUN_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"{str(out_dir)!r} holds no {RUN_FILE}: not a labkit run folder") from exc


def _write_run(out_dir: Path, info: Mapping[str, Any]) -> None:
    import json

    atomic_write(out_dir / RUN_FILE, json.dumps(info, indent=2, allow_nan=True, default=str) + "\n")


def _error_from(exc: BaseException) -> dict[str, Any]:
    """The failing cell and its traceback, from a papermill error or any exception."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        from nbconvert.filters.ansi import strip_ansi

        return {
            "cell_index": exc.cell_index,
            "execution_count": exc.exec_count,
            "source": exc.source,
            "ename": exc.ename,
            "evalue": exc.evalue,
            "traceback": strip_ansi("\n".join(exc.traceback)),
        }
    import traceback

    return {"cell_index": None, "ename": type(exc).__name__, "evalue": str(exc),
            "traceback": "".join(traceback.format_exception(exc))}


def _failing_cell(nb: Any, fallback: int | None) -> int | None:
    """Index, in the saved notebook, of the cell with an error output (papermill inserts
    a marker cell above it, so its own index is off by one)."""
    for index, cell in enumerate(nb.cells):
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            return index
    return fallback


def run_notebook(
    notebook: str | Path,
    parameters: Mapping[str, Any] | None = None,
    *,
    out_dir: str | Path | None = None,
    timeout: float | None = None,
    progress: bool = False,
    raise_on_failure: bool = True,
    cwd: str | Path | None = None,
) -> RunResult:
    """Execute ``notebook`` with ``parameters`` and write a report folder.

    Args:
        notebook: path of a notebook with a code cell tagged ``parameters``.
        parameters: overrides of that cell's values; checked before a kernel starts.
        out_dir: the run folder; defaults to ``reports/<notebook stem>``.
        timeout: limit in seconds for any one cell (``None``: no limit).
        progress: show a cell-by-cell progress bar on stderr.
        raise_on_failure: raise :class:`RunFailedError` when a cell fails (after
            writing the partial notebook, the report and ``run.json``); otherwise return a
            result with ``status == "failed"``.
        cwd: working directory of the kernel (default: the notebook's folder).

    Returns:
        A :class:`RunResult`.

    Raises:
        labkit.errors.ParameterError: unknown or ill-typed parameters (nothing is started
            or written).
        RunFailedError: a cell raised (``run_dir`` holds the partial run).
    """
    nb_path = Path(notebook)
    if not nb_path.is_file():
        raise ConfigError(f"notebook {str(notebook)!r} does not exist")
    if nb_path.suffix != ".ipynb":
        raise ConfigError(f"expected a .ipynb notebook, got {str(notebook)!r}")
    if timeout is not None and not (isinstance(timeout, int | float) and timeout > 0):
        raise ConfigError(f"timeout must be a number of seconds > 0 or None, got {timeout!r}")
    declared = notebook_parameters(nb_path)
    overrides = check_parameters(declared, dict(parameters or {}), notebook=str(nb_path))
    values = {name: p.default for name, p in declared.items()} | overrides

    out = Path(out_dir) if out_dir is not None else Path("reports") / nb_path.stem
    out.mkdir(parents=True, exist_ok=True)
    executed = out / nb_path.name
    partial = out / f".{nb_path.stem}.partial.ipynb"
    info: dict[str, Any] = {
        "notebook": str(nb_path),
        "output_notebook": executed.name,
        "report": REPORT_FILE,
        "parameters": values,
        "overrides": overrides,
        "status": "running",
        "started": _now(),
        "git": git_state(nb_path.resolve().parent),
        "versions": _versions(),
        "device": _device(),
        "host": platform.node(),
        "timeout_per_cell_s": timeout,
    }
    _write_run(out, info)

    import nbformat
    import papermill

    # The kernel inherits this: plotly figures carry their own plotly.js into the report.
    # The caller's environment is restored afterwards.
    previous = os.environ.get("PLOTLY_RENDERER")
    os.environ["PLOTLY_RENDERER"] = REPORT_PLOTLY_RENDERER
    start = time.perf_counter()
    error: dict[str, Any] | None = None
    try:
        papermill.execute_notebook(
            str(nb_path), str(partial), parameters=overrides, kernel_name="python3",
            progress_bar=progress, cwd=str(cwd or nb_path.resolve().parent),
            execution_timeout=timeout,
        )
    except Exception as exc:  # a failing cell, a dead kernel, a timeout
        error = _error_from(exc)
    finally:
        if previous is None:
            os.environ.pop("PLOTLY_RENDERER", None)
        else:
            os.environ["PLOTLY_RENDERER"] = previous
    duration = time.perf_counter() - start

    if partial.exists():
        nb = nbformat.read(partial, as_version=4)
        atomic_write(executed, nbformat.writes(nb))
        partial.unlink()
        records = read_records(nb)
        if error is not None:
            error["cell_index"] = _failing_cell(nb, error.get("cell_index"))
        atomic_write(out / REPORT_FILE, notebook_to_html(nb, title=nb_path.stem))
    else:
        records = {}
    info.update(
        status="failed" if error else "completed",
        finished=_now(),
        duration_s=round(duration, 3),
        error=error,
        records=records,
    )
    _write_run(out, info)
    result = RunResult(out, info["status"], values, records, duration, error)
    if error and raise_on_failure:
        where = f"cell {error['cell_index']}" if error.get("cell_index") is not None else "run"
        raise RunFailedError(
            f"{nb_path}: {where} raised {error['ename']}: {error['evalue']} "
            f"(partial notebook and run.json in {out})",
            run_dir=str(out),
        )
    return result

