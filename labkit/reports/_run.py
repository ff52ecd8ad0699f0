"""Run one notebook headlessly as a parameterized report.

:func:`run_notebook` checks the parameters against the notebook's ``parameters`` cell
(types and declared constraints, before any kernel starts), executes it with papermill,
and leaves in ``out_dir``:

- ``<stem>.ipynb``: the executed notebook (kept, partial, when a cell fails);
- ``report.html``: a self-contained HTML report that renders offline;
- ``kernel.log``: what the kernel wrote to its stdout and stderr (not the terminal's);
- ``run.json``: the parameters the kernel received, the notebook's content digest, git
  commit, package versions, device, timings, status, the error (cell and traceback) if
  any, the recorded values, the SHA-256 of every file of the run and the report's size
  (``report_bytes``).

How a run stays truthful:

- It never writes into the folder of its source notebook (refused before anything runs),
  and only replaces a folder that is empty or a previous run (it has a ``run.json``).
- One writer per run folder: a lock file beside it (:mod:`labkit.reports._lock`); a
  second run into the same folder is refused with the holder's PID and host.
- A run is written into a fresh hidden folder beside ``out_dir`` and swapped in as a
  whole when it ends, so the folder never mixes files of two runs.
- It ends with ``status`` ``completed``, ``failed`` or, on SIGINT, SIGTERM or SIGHUP,
  ``interrupted``. A run killed outright (SIGKILL, power loss) leaves its hidden folder,
  which the next start (or :func:`inspect_run`) finds and reports as ``killed``.
- ``run.json`` records what the kernel actually received: a cell added right after the
  parameters displays their values, and a run whose values differ from the intended ones
  fails. Cells an earlier run injected are removed from the source before it runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import logging
import math
import os
import platform
import secrets
import shutil
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from labkit.core.cache import atomic_write
from labkit.core.provenance import git_state
from labkit.errors import ConfigError, RunFailedError
from labkit.reports._html import notebook_to_html
from labkit.reports._lock import FolderLock
from labkit.reports._params import (
    check_parameters,
    notebook_digest,
    notebook_parameters,
    parameters_cell,
    read_notebook,
    source_cells,
)
from labkit.reports._record import read_parameters, read_records

__all__ = ["RunResult", "RunState", "inspect_run", "read_run", "run_notebook"]

RUN_FILE = "run.json"
REPORT_FILE = "report.html"
KERNEL_LOG = "kernel.log"
#: ``format`` of the ``run.json`` files this version writes.
RUN_FORMAT = "labkit-run-1"
#: Packages whose versions go into ``run.json``.
_VERSIONED = ("labkit", "torch", "numpy", "scipy", "xarray", "plotly", "papermill", "nbclient",
              "ipykernel", "dask", "distributed")
#: The plotly renderer used in report kernels: a MIME bundle for JupyterLab plus
#: self-contained HTML (plotly.js inlined) for the offline report.
REPORT_PLOTLY_RENDERER = "plotly_mimetype+notebook"
#: What a run folder can be found in (``inspect_run``); ``done`` is the only complete one.
STATES = ("done", "stale", "failed", "interrupted", "killed", "running", "corrupt", "missing")
_ENV_LOCK = threading.Lock()


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What :func:`run_notebook` produced.

    Attributes:
        out_dir: the run folder.
        status: ``"completed"``, ``"failed"`` or ``"interrupted"``.
        parameters: every parameter's value as the kernel received it (defaults and
            overrides).
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


@dataclasses.dataclass(frozen=True)
class RunState:
    """What a run folder holds, judged against the notebook and parameters it should.

    Attributes:
        state: one of :data:`STATES`: ``done`` (completed, every file present and
            matching its recorded SHA-256, made from this notebook content, these
            parameters and this labkit version), ``stale`` (completed, but from another
            notebook content, parameters or labkit version), ``failed``, ``interrupted``,
            ``killed``, ``running`` (its lock is held now), ``corrupt`` (unreadable
            ``run.json``, a missing or altered file) or ``missing``.
        reason: the evidence, in words.
        info: the ``run.json`` contents, when readable.
    """

    state: str
    reason: str
    info: dict[str, Any] | None = None


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _labkit_version() -> str:
    import labkit

    return labkit.__version__


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


def _sha256(path: Path) -> str:
    from labkit.core.download import sha256_file

    return sha256_file(path)


def read_run(out_dir: str | Path) -> dict[str, Any]:
    """The ``run.json`` of a run folder as a dictionary.

    Raises:
        ConfigError: when the folder has no ``run.json`` or it is not a JSON object (the
            message names the file).
    """
    path = Path(out_dir) / RUN_FILE
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"{str(out_dir)!r} holds no {RUN_FILE}: not a labkit run folder") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read as JSON: {exc}") from exc
    if not isinstance(info, dict):
        raise ConfigError(f"{path} holds {type(info).__name__}, expected a JSON object")
    return info


def _write_run(folder: Path, info: Mapping[str, Any]) -> None:
    atomic_write(folder / RUN_FILE, json.dumps(info, indent=2, allow_nan=True, default=str) + "\n")


def _same(a: Any, b: Any) -> bool:
    """Equal as typed JSON (``1``, ``1.0`` and ``true`` all differ)."""
    return json.dumps(a, sort_keys=True, allow_nan=True) == json.dumps(b, sort_keys=True,
                                                                       allow_nan=True)


def _staging_dirs(out: Path) -> list[Path]:
    return sorted(p for p in out.parent.glob(f".{out.name}.staging-*") if p.is_dir())


def inspect_run(
    out_dir: str | Path, *, digest: str | None = None,
    parameters: Mapping[str, Any] | None = None, _locked: bool = False,
) -> RunState:
    """Judge a run folder without changing it (see :class:`RunState`).

    Args:
        out_dir: the run folder.
        digest: the :func:`~labkit.reports._params.notebook_digest` the run must have
            been made from (``None``: not checked).
        parameters: values the run must have received for these names (``None``: not
            checked).
    """
    out = Path(out_dir)
    if not _locked and FolderLock(out).is_held():
        holder = FolderLock(out).holder() or {}
        return RunState("running", f"pid {holder.get('pid')} on {holder.get('host')} is "
                                   f"writing it since {holder.get('since')}")
    for staging in reversed(_staging_dirs(out)):
        with contextlib.suppress(ConfigError):
            info = read_run(staging)
            if info.get("status") == "running":
                return RunState("killed", f"the run started {info.get('started')} by pid "
                                          f"{info.get('pid')} ended without finishing", info)
    if not out.exists():
        return RunState("missing", f"{out} does not exist")
    try:
        info = read_run(out)
    except ConfigError as exc:
        return RunState("corrupt", str(exc))
    status = info.get("status")
    if status in ("failed", "interrupted", "killed"):
        return RunState(str(status), str((info.get("error") or {}).get("evalue", status)), info)
    if status != "completed":
        return RunState("corrupt", f"{out / RUN_FILE} has status {status!r}", info)
    files = info.get("files")
    if not isinstance(files, dict) or not files:
        return RunState("corrupt", f"{out / RUN_FILE} lists no files (written by an older "
                                   "labkit?)", info)
    for name, expected in files.items():
        path = out / str(name)
        if not path.is_file():
            return RunState("corrupt", f"{path} is missing", info)
        if _sha256(path) != expected:
            return RunState("corrupt", f"{path} does not match the SHA-256 in {RUN_FILE}", info)
    if digest is not None and info.get("notebook_sha256") != digest:
        return RunState("stale", "the notebook's content changed since this run", info)
    if info.get("labkit_version") != _labkit_version():
        return RunState("stale", f"made by labkit {info.get('labkit_version')}, this is "
                                 f"{_labkit_version()}", info)
    received = info.get("parameters") or {}
    for name, value in (parameters or {}).items():
        if name not in received or not _same(received[name], value):
            return RunState("stale", f"parameter {name!r} was {received.get(name)!r}, "
                                     f"wanted {value!r}", info)
    return RunState("done", "completed; files verified", info)


def _timeout_seconds(timeout: Any) -> int | None:
    """A per-cell limit in whole seconds (nbclient takes ints): ``2.5`` becomes 3."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not (
            math.isfinite(timeout) and timeout > 0):
        raise ConfigError(f"timeout must be a finite number of seconds > 0 (or None for no "
                          f"limit), got {timeout!r}")
    return math.ceil(timeout)


def _check_out(out: Path, nb_path: Path, *, own_folder: bool = False) -> None:
    """Refuse output folders a run must not replace (``own_folder``: a sweep's point
    folder, which the sweep owns whatever it holds)."""
    source_dir = nb_path.resolve().parent
    target = out.resolve()
    if target == source_dir or target in source_dir.parents:
        raise ConfigError(
            f"refusing to write the run into {str(out)!r}: it holds the source notebook "
            f"{str(nb_path)!r}, which the run would replace; choose another output folder "
            f"(the default is reports/{nb_path.stem})")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output folder {str(out)!r} is a file; expected a folder")
    if not own_folder and out.is_dir() and any(out.iterdir()) and not (out / RUN_FILE).exists():
        raise ConfigError(
            f"output folder {str(out)!r} holds files but no {RUN_FILE}: it is not a labkit "
            f"run, and a run replaces its whole folder; choose a new or empty folder")
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the folder {str(parent)!r} for the run: "
                          f"{exc.strerror}") from exc
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"output folder {str(parent)!r} is read-only; expected a writable "
                          f"folder")


def _rename_exchange(a: Path, b: Path) -> bool:
    """Swap two folders in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False when the
    system has no such call."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    return False


def _swap_in(staging: Path, out: Path) -> None:
    """Make ``staging`` the run folder ``out``, as a whole; the old one is removed."""
    if not out.exists():
        os.rename(staging, out)
        return
    if _rename_exchange(staging, out):
        shutil.rmtree(staging, ignore_errors=True)
        return
    old = out.parent / f".{out.name}.old-{secrets.token_hex(4)}"
    os.rename(out, old)
    os.rename(staging, out)
    shutil.rmtree(old, ignore_errors=True)


def _recover(out: Path, *, status: str = "killed") -> dict[str, Any] | None:
    """With the lock held: finish what a dead writer left (hidden folders beside ``out``).

    The newest unfinished run is marked ``status`` (``killed``: its writer died without a
    word) and swapped in, so that the folder tells the truth about the last run; older
    leftovers are deleted. Returns that run's ``run.json``, or ``None``.
    """
    for old in out.parent.glob(f".{out.name}.old-*"):
        shutil.rmtree(old, ignore_errors=True)
    found = []
    for staging in _staging_dirs(out):
        try:
            found.append((read_run(staging).get("started", ""), staging))
        except ConfigError:
            shutil.rmtree(staging, ignore_errors=True)
    if not found:
        return None
    found.sort(key=lambda x: str(x[0]))
    for _, staging in found[:-1]:
        shutil.rmtree(staging, ignore_errors=True)
    staging = found[-1][1]
    info = read_run(staging)
    if info.get("status") == "running":
        info.update(status=status, finished=None, detected=_now(),
                    error={"cell_index": None, "ename": status.capitalize(),
                           "evalue": f"the run (pid {info.get('pid')} on {info.get('host')}) "
                                     "ended without finishing", "traceback": ""})
        info["files"] = _file_hashes(staging, info)
        _write_run(staging, info)
    _swap_in(staging, out)
    return info


def _file_hashes(folder: Path, info: Mapping[str, Any]) -> dict[str, str]:
    """SHA-256 of the run's results (not of ``kernel.log``: a kernel that is still going
    down may append to it after the run has ended)."""
    names = [info.get("output_notebook"), REPORT_FILE]
    return {str(n): _sha256(folder / str(n)) for n in names if n and (folder / str(n)).is_file()}


class _Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP during a run (a ``KeyboardInterrupt``, so that asyncio and
    nbclient let it through and shut the kernel down, as they do for Ctrl-C)."""

    def __init__(self, signame: str) -> None:
        super().__init__(signame)
        self.signame = signame


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """In the main thread, SIGTERM and SIGHUP raise :class:`_Interrupted` while the body runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise _Interrupted(signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Ignore SIGINT, SIGTERM and SIGHUP while a run's last files are written."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN)
                for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


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


def _prepared(nb: Any, names: list[str]) -> Any:
    """The source without cells of earlier runs, plus a cell right after the parameters
    that displays the values the kernel received."""
    import nbformat

    nb = nbformat.from_dict(nb)
    nb.cells = source_cells(nb)
    index, _ = parameters_cell(nb)
    values = ", ".join(f"{n!r}: {n}" for n in names)
    check = nbformat.v4.new_code_cell(
        source=("# labkit: the values this kernel received for its parameters (for run.json)\n"
                "from labkit.reports._record import record_parameters as _labkit_rp\n"
                f"_labkit_rp({{{values}}})\ndel _labkit_rp"),
        metadata={"tags": ["labkit-parameters"]})
    nb.cells.insert(index + 1, check)
    return nb


def _logged_kernel_manager(log: Path) -> type:
    """A kernel manager whose kernels write their stdout and stderr to ``log`` (their
    warnings and, when a run is interrupted, their shutdown noise belong in the run
    folder, not in the terminal of the person who ran it)."""
    from jupyter_client.manager import AsyncKernelManager

    class LoggedKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            with log.open("ab") as sink:  # the kernel keeps its own copy of the descriptor
                kw.update(stdout=sink, stderr=sink)
                await super()._async_launch_kernel(kernel_cmd, **kw)

    return LoggedKernelManager


class _KnownParameters(logging.Filter):
    """Drops papermill's own parameter-cell warnings: its line parser cannot read a
    constraint such as ``[>= 1]`` ("Unable to parse line") and then calls every name
    unknown, while labkit has already checked the values against the cell."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not message.startswith(("Unable to parse line", "Passed unknown parameter"))


@contextlib.contextmanager
def _quiet_papermill() -> Iterator[None]:
    found = _KnownParameters()
    loggers = [logging.getLogger(n) for n in ("papermill", "papermill.translators",
                                               "papermill.parameterize")]
    for logger in loggers:
        logger.addFilter(found)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(found)


@contextlib.contextmanager
def _plotly_renderer() -> Iterator[None]:
    """The kernel inherits this: plotly figures carry their own plotly.js into the report.
    The caller's environment is restored afterwards."""
    with _ENV_LOCK:
        previous = os.environ.get("PLOTLY_RENDERER")
        os.environ["PLOTLY_RENDERER"] = REPORT_PLOTLY_RENDERER
    try:
        yield
    finally:
        with _ENV_LOCK:
            if previous is None:
                os.environ.pop("PLOTLY_RENDERER", None)
            else:
                os.environ["PLOTLY_RENDERER"] = previous


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
        parameters: overrides of that cell's values; checked (type and the cell's declared
            constraints) before a kernel starts.
        out_dir: the run folder; defaults to ``reports/<notebook stem>``. It must not hold
            the source notebook, and must be new, empty or an earlier run (it is replaced
            as a whole).
        timeout: limit in seconds for any one cell (``None``: no limit); rounded up to
            whole seconds.
        progress: show a cell-by-cell progress bar on stderr.
        raise_on_failure: raise :class:`RunFailedError` when a cell fails (after
            writing the partial notebook, the report and ``run.json``); otherwise return a
            result with ``status == "failed"``.
        cwd: working directory of the kernel (default: the notebook's folder).

    Returns:
        A :class:`RunResult`.

    Raises:
        labkit.errors.ParameterError: unknown, ill-typed or out-of-range parameters
            (nothing is started or written).
        labkit.errors.ConfigError: a bad notebook, output folder or timeout (idem).
        labkit.errors.FolderBusyError: another process is writing into ``out_dir``.
        RunFailedError: a cell raised (``run_dir`` holds the partial run).
        KeyboardInterrupt: on SIGINT, SIGTERM or SIGHUP, after the folder has been
            written with ``status: interrupted``.
    """
    result = _run(Path(notebook), parameters, out_dir=out_dir, timeout=timeout,
                  progress=progress, cwd=cwd)
    assert result is not None
    if result.error and result.status == "failed" and raise_on_failure:
        error = result.error
        where = f"cell {error['cell_index']}" if error.get("cell_index") is not None else "run"
        raise RunFailedError(
            f"{notebook}: {where} raised {error['ename']}: {error['evalue']} "
            f"(partial notebook and run.json in {result.out_dir})",
            run_dir=str(result.out_dir),
        )
    return result


def _run(
    nb_path: Path,
    parameters: Mapping[str, Any] | None,
    *,
    out_dir: str | Path | None,
    timeout: float | None,
    progress: bool = False,
    cwd: str | Path | None = None,
    wait: float = 0.0,
    skip_if_done: bool = False,
    own_folder: bool = False,
) -> RunResult | None:
    """:func:`run_notebook` without the raise; with ``skip_if_done``, returns ``None``
    (running nothing) when the folder already holds this exact run, verified under the
    lock (how concurrent sweeps share points instead of running one twice)."""
    nb = read_notebook(nb_path)
    limit = _timeout_seconds(timeout)
    declared = notebook_parameters(nb)
    overrides = check_parameters(declared, dict(parameters or {}), notebook=str(nb_path))
    values = {name: p.default for name, p in declared.items()} | overrides
    digest = notebook_digest(nb)
    out = Path(out_dir) if out_dir is not None else Path("reports") / nb_path.stem
    _check_out(out, nb_path, own_folder=own_folder)

    lock = FolderLock(out, what="run folder")
    lock.acquire(wait=wait)
    try:
        _recover(out)
        if skip_if_done and inspect_run(out, digest=digest, parameters=values,
                                        _locked=True).state == "done":
            return None
        return _execute(nb_path, nb, values, overrides, digest, out, limit, progress, cwd)
    finally:
        lock.release()


def _execute(nb_path: Path, nb: Any, values: dict[str, Any], overrides: dict[str, Any],
             digest: str, out: Path, limit: int | None, progress: bool,
             cwd: str | Path | None) -> RunResult:
    """Execute into a fresh hidden folder and swap it in (the lock is held)."""
    import nbformat
    import papermill

    staging = out.parent / f".{out.name}.staging-{os.getpid()}-{secrets.token_hex(4)}"
    staging.mkdir()
    executed_name = f"{nb_path.stem}.ipynb"
    info: dict[str, Any] = {
        "format": RUN_FORMAT,
        "notebook": str(nb_path),
        "notebook_sha256": digest,
        "labkit_version": _labkit_version(),
        "output_notebook": executed_name,
        "report": REPORT_FILE,
        "parameters": values,
        "overrides": overrides,
        "status": "running",
        "started": _now(),
        "pid": os.getpid(),
        "host": platform.node(),
        "git": git_state(nb_path.resolve().parent),
        "versions": _versions(),
        "device": _device(),
        "timeout_per_cell_s": limit,
    }
    _write_run(staging, info)
    start = time.perf_counter()
    error: dict[str, Any] | None = None
    status = "completed"
    interrupted: KeyboardInterrupt | None = None
    try:
        with _signals_raise(), _plotly_renderer(), _quiet_papermill():
            papermill.execute_notebook(
                _prepared(nb, list(values)), str(staging / executed_name), parameters=overrides,
                kernel_name="python3", progress_bar=progress,
                cwd=str(cwd or nb_path.resolve().parent), execution_timeout=limit,
                kernel_manager_class=_logged_kernel_manager(staging / KERNEL_LOG),
            )
    except KeyboardInterrupt as exc:
        interrupted = exc
        status = "interrupted"
        signame = exc.signame if isinstance(exc, _Interrupted) else "SIGINT"
        error = {"cell_index": None, "ename": "Interrupted",
                 "evalue": f"the run was stopped by {signame}", "traceback": "", "signal": signame}
    except Exception as exc:  # a failing cell, a dead kernel, a timeout
        status = "failed"
        error = _error_from(exc)
    duration = time.perf_counter() - start

    with _signals_deferred():
        records: dict[str, Any] = {}
        received: dict[str, Any] | None = None
        out_nb: Any = None
        executed = staging / executed_name
        if executed.exists():
            try:
                out_nb = nbformat.read(executed, as_version=4)
            except Exception:
                out_nb = None
            if out_nb is not None:
                records = read_records(out_nb)
                received = read_parameters(out_nb)
                if error is not None and status == "failed":
                    error["cell_index"] = _failing_cell(out_nb, error.get("cell_index"))
        if received is not None:
            info["parameters"] = received
            wrong = [n for n in values if n not in received or not _same(received[n], values[n])]
            if wrong and status == "completed":
                status = "failed"
                error = {"cell_index": None, "ename": "ParameterMismatch",
                         "evalue": "the kernel received other values than intended for "
                                   + ", ".join(f"{n} ({received.get(n)!r}, intended "
                                               f"{values[n]!r})" for n in wrong),
                         "traceback": ""}
        elif status == "completed":
            status = "failed"
            error = {"cell_index": None, "ename": "ParameterCheckMissing",
                     "evalue": "the executed notebook does not show the values its kernel "
                               "received", "traceback": ""}
        info.update(status=status, finished=_now(), duration_s=round(duration, 3), error=error,
                    records=records, report_bytes=None)
        if out_nb is not None:  # written once the status is final: its header shows it
            report = notebook_to_html(out_nb, title=nb_path.stem, run=info).encode()
            atomic_write(staging / REPORT_FILE, report)
            info["report_bytes"] = len(report)
        info["files"] = _file_hashes(staging, info)
        _write_run(staging, info)
        _swap_in(staging, out)
    result = RunResult(out, status, dict(info["parameters"]), records, duration, error)
    if interrupted is not None:
        raise interrupted
    return result
