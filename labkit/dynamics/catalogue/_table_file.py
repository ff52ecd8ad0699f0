"""The whole catalogue's invariants table: loading it, and writing it resumably.

:func:`build_invariants_table` runs :func:`~labkit.dynamics.compute_invariants` over the
catalogue and writes the table as JSON, atomically after every system, so an
interrupted run loses at most the system in progress and ``resume=True`` continues it.
:func:`invariants_table` loads the table shipped in
``labkit/dynamics/catalogue/data/invariants.json``; ``labkit table``
regenerates it.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import platform
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from labkit.core.cache import atomic_write
from labkit.core.provenance import git_state
from labkit.dynamics._tables import NamedRows, markdown_table
from labkit.dynamics.catalogue._table import (
    DIVERGENCE_ATOL_MAP,
    DIVERGENCE_ATOL_PER_PERIOD,
    DIVERGENCE_RTOL,
    STATUSES,
    STIFFNESS_LIMIT,
    TRACE_STEP,
    ZERO_SIGMAS,
    InvariantsRow,
    TableSettings,
    _canonical,
    _catalogue_names,
    compute_invariants,
)
from labkit.errors import ConfigError, DataError

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["SHIPPED_TABLE", "InvariantsTable", "build_invariants_table", "invariants_table"]

#: The table shipped with labkit (regenerate with ``labkit table``).
SHIPPED_TABLE = Path(__file__).parent / "data" / "invariants.json"
#: Version of the JSON layout of a table file.
FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class InvariantsTable(NamedRows[InvariantsRow]):
    """A table of :class:`InvariantsRow`, keyed by system name, with its header.

    Attributes:
        header: how the table was made: labkit version and commit, date, machine,
            settings, total wall time (``wall_seconds``).
        rows: system name -> row, in catalogue order.
    """

    header: Mapping[str, Any]
    rows: Mapping[str, InvariantsRow]
    missing_error: ClassVar[type[Exception]] = ConfigError

    @property
    def settings(self) -> TableSettings:
        """The settings of the header."""
        return TableSettings.from_dict(self.header["settings"])

    def status_counts(self) -> dict[str, int]:
        """How many rows have each status."""
        counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
        for row in self.rows.values():
            counts[row.status] += 1
        return counts

    def records(self) -> list[dict[str, Any]]:
        """The rows as plain dicts (JSON values: lists, and None for NaN), e.g. for a CSV
        writer."""
        return [row.to_json() for row in self.rows.values()]

    def summary(self) -> str:
        """A Markdown table, one line per system: status, the largest exponent and the
        Kaplan-Yorke dimension with their standard errors, the two checks (``yes``,
        ``no``, ``-`` where one does not apply) and the RK4 step."""
        def check(flag: bool | None) -> str | None:
            return None if flag is None else ("yes" if flag else "no")

        lines = [{"name": r.name, "kind": r.kind, "status": r.status,
                  "lambda1": r.max_lyapunov, "stderr": r.max_lyapunov_stderr,
                  "kaplan_yorke": r.kaplan_yorke, "ky_stderr": r.kaplan_yorke_stderr,
                  "divergence_ok": check(r.divergence_ok), "zero_ok": check(r.zero_ok),
                  "dt": r.dt} for r in self.rows.values()]
        return markdown_table(lines, (
            ("name", "system", ""), ("kind", "kind", ""), ("status", "status", ""),
            ("lambda1", "lambda_1", ".4g"), ("stderr", "stderr", ".2g"),
            ("kaplan_yorke", "D_KY", ".4g"), ("ky_stderr", "stderr", ".2g"),
            ("divergence_ok", "sum check", ""), ("zero_ok", "zero check", ""),
            ("dt", "dt", ".3g")))

    def to_xarray(self) -> xr.Dataset:
        """The table as an :class:`xarray.Dataset` on a ``system`` axis; the spectra are
        padded with NaN along an ``exponent`` axis. The header goes into ``attrs``."""
        import numpy as np
        import xarray as xr

        rows = list(self.rows.values())
        width = max([len(r.exponents) for r in rows] + [1])

        def padded(values: tuple[float, ...]) -> list[float]:
            return list(values) + [math.nan] * (width - len(values))

        data: dict[str, Any] = {
            "exponents": (("system", "exponent"),
                          np.array([padded(r.exponents) for r in rows], dtype=float)),
            "exponents_stderr": (("system", "exponent"),
                                 np.array([padded(r.exponents_stderr) for r in rows],
                                          dtype=float)),
        }
        skip = {"name", "exponents", "exponents_stderr", "settings"}
        for f in dataclasses.fields(InvariantsRow):
            if f.name in skip:
                continue
            values = [getattr(r, f.name) for r in rows]
            if f.name in ("divergence_ok", "zero_ok"):  # None (not applicable) -> NaN
                values = [math.nan if v is None else float(v) for v in values]
            data[f.name] = ("system", np.asarray(values))
        attrs = {k: json.dumps(v) if isinstance(v, Mapping | list) else v
                 for k, v in self.header.items()}
        return xr.Dataset(data, coords={"system": [r.name for r in rows]}, attrs=attrs)


def _read(path: Path) -> tuple[dict[str, Any], dict[str, InvariantsRow]]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"no invariants table at {str(path)!r}") from None
    except json.JSONDecodeError as err:
        raise DataError(f"{str(path)!r} is not valid JSON: {err}") from None
    if not isinstance(data, dict) or "header" not in data or "rows" not in data:
        raise DataError(f"{str(path)!r} is not an invariants table (no header/rows)")
    version = data["header"].get("format_version")
    if version != FORMAT_VERSION:
        raise DataError(f"{str(path)!r} has format_version {version!r}; "
                        f"expected {FORMAT_VERSION}")
    rows = {r["name"]: InvariantsRow.from_json(r) for r in data["rows"]}
    return data["header"], rows


def invariants_table(path: str | os.PathLike[str] | None = None) -> InvariantsTable:
    """Load an invariants table: by default the one shipped with labkit.

    Raises:
        DataError: if the file is missing, not JSON or not a table of this format.
    """
    header, rows = _read(Path(SHIPPED_TABLE if path is None else path))
    return InvariantsTable(header=header, rows=rows)


def _git_commit() -> str:
    """The checkout's commit, ``+dirty`` when tracked files have changes."""
    state = git_state(Path(__file__).resolve().parents[3])
    if state["commit"] is None:
        return "unknown"
    return state["commit"] + ("+dirty" if state["dirty"] else "")


def _machine() -> dict[str, Any]:
    import importlib.metadata

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return {
        "description": f"{os.cpu_count()}-core {platform.machine()} CPU, {gpu}",
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "dysts": importlib.metadata.version("dysts"),
    }


def _new_header(settings: TableSettings) -> dict[str, Any]:
    from labkit import __version__

    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return {
        "format_version": FORMAT_VERSION,
        "labkit_version": __version__,
        "commit": _git_commit(),
        "created": now,
        "updated": now,
        "machine": _machine(),
        "settings": settings.to_dict(),
        "method": "Benettin QR with the exact tangent of the RK4 step (flows) or of the "
                  "map, on labkit's compiled kernels (labkit.dynamics.lyapunov_spectrum; "
                  "eager torch where a system does not compile); error bars are standard "
                  "errors across initial conditions",
        "checks": {"divergence_rtol": DIVERGENCE_RTOL,
                   "divergence_atol_per_period": DIVERGENCE_ATOL_PER_PERIOD,
                   "divergence_atol_map": DIVERGENCE_ATOL_MAP,
                   "trace_step": TRACE_STEP, "stiffness_limit": STIFFNESS_LIMIT,
                   "zero_sigmas": ZERO_SIGMAS,
                   "zero_bias": "ln(max|f| / min|f|) / time"},
        "wall_seconds": 0.0,
        "sessions": 0,
    }


def _write_atomic(path: Path, header: Mapping[str, Any],
                  rows: Mapping[str, InvariantsRow]) -> None:
    """Write the table to a temporary file beside ``path`` and rename it over ``path``,
    so that a reader (or an interrupted run) sees the old table or the new one, whole."""
    order = {n: i for i, n in enumerate(_catalogue_names())}
    ordered = sorted(rows.values(), key=lambda r: order.get(r.name, len(order)))
    text = json.dumps({"header": dict(header), "rows": [r.to_json() for r in ordered]},
                      indent=1, allow_nan=False)
    atomic_write(path, text + "\n")


def build_invariants_table(
    names: Sequence[str] | None = None,
    *,
    path: str | os.PathLike[str],
    settings: TableSettings | None = None,
    resume: bool = False,
    progress: Callable[[str], Any] | None = print,
    workers: int = 1,
) -> InvariantsTable:
    """Compute the invariants of ``names`` (default: every flow and map) into ``path``.

    The file is rewritten atomically after every system. With ``resume=True`` an existing
    file is continued: its rows are kept and their systems skipped, and its settings must
    equal ``settings`` (default: the file's own). Without it an existing file is replaced.

    Args:
        names: systems to compute (case-insensitive; default all flows then all maps).
        path: the JSON file to write.
        settings: defaults to ``TableSettings()`` (or the resumed file's settings).
        resume: continue an existing file at ``path``.
        progress: called with one line per system (None: silent).
        workers: processes computing systems side by side (each with one torch thread
            and one kernel thread; rows are written as they finish, in any order).

    Returns:
        The table as written.

    Raises:
        ConfigError: for unknown names, or when resuming a file made with other settings.
    """
    path = Path(path)
    todo = _catalogue_names() if names is None else [_canonical(n) for n in names]
    say = progress or (lambda line: None)
    rows: dict[str, InvariantsRow] = {}
    if resume and path.exists():
        header, rows = _read(path)
        old = TableSettings.from_dict(header["settings"])
        if settings is not None and settings != old:
            diff = {k: (v, getattr(settings, k)) for k, v in old.to_dict().items()
                    if getattr(settings, k) != v}
            raise ConfigError(f"cannot resume {str(path)!r}: it was made with other settings "
                              f"(field: (file, requested)) {diff}")
        settings = old
    else:
        settings = TableSettings() if settings is None else settings
        if not isinstance(settings, TableSettings):
            raise ConfigError(f"settings must be a TableSettings, got {settings!r}")
        header = _new_header(settings)
    header = dict(header, commit=_git_commit(), machine=_machine(),
                  sessions=int(header.get("sessions", 0)) + 1, workers=workers)
    base_wall = float(header.get("wall_seconds", 0.0))
    start = time.perf_counter()
    pending = [n for n in todo if n not in rows]
    say(f"{len(todo) - len(pending)} of {len(todo)} systems already in {path}; "
        f"computing {len(pending)}")
    if not (isinstance(workers, int) and workers >= 1):
        raise ConfigError(f"workers must be an int >= 1, got {workers!r}")
    for i, row in enumerate(_rows(pending, settings, workers), 1):
        name = row.name
        rows[name] = row
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        header |= {"updated": now, "wall_seconds": base_wall + time.perf_counter() - start}
        _write_atomic(path, header, rows)
        lam = (f"lambda1 = {row.max_lyapunov:.4g} +- {row.max_lyapunov_stderr:.2g}"
               if row.status == "ok" else row.message[:100])
        say(f"[{i}/{len(pending)}] {name:26s} {row.status:8s} {row.seconds:6.1f} s  {lam}")
    header |= {"wall_seconds": base_wall + time.perf_counter() - start}
    if not pending:
        _write_atomic(path, header, rows)
    say(f"total wall time {header['wall_seconds']:.1f} s ({path})")
    return InvariantsTable(header=header, rows=_in_order(rows))


def _worker_init() -> None:
    os.environ["LABKIT_KERNEL_THREADS"] = "1"
    torch.set_num_threads(1)


def _rows(names: Sequence[str], settings: TableSettings, workers: int) -> Iterator[InvariantsRow]:
    """The rows of ``names``, computed here (one worker) or by a process pool, as they
    finish."""
    if workers == 1 or len(names) <= 1:
        for name in names:
            yield compute_invariants(name, settings)
        return
    import concurrent.futures
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # no forked torch or kernel threads
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                                initializer=_worker_init) as pool:
        futures = [pool.submit(compute_invariants, name, settings) for name in names]
        for future in concurrent.futures.as_completed(futures):
            yield future.result()


def _in_order(rows: Mapping[str, InvariantsRow]) -> dict[str, InvariantsRow]:
    order = {n: i for i, n in enumerate(_catalogue_names())}
    return {n: rows[n] for n in sorted(rows, key=lambda n: order.get(n, len(order)))}
