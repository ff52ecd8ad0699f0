"""Parameter sweeps: the cartesian grid of a notebook's parameters on dask.distributed.

Each grid point is one :func:`~labkit.reports.run_notebook` run in its own folder
``<out>/runs/<key>``, where ``key`` is a hash of the notebook's name and the point's
parameters. A point whose ``run.json`` says ``completed`` is skipped when the sweep runs
again, and a run that a killed worker left half done is simply run again by another
worker (its files are written atomically, and a point has exactly one folder), so a
sweep never loses or duplicates a result. The recorded values are gathered into one
:class:`xarray.Dataset` with one dimension per swept parameter, written atomically as
``results.nc`` beside ``summary.html``.
"""

from __future__ import annotations

import dataclasses
import html
import itertools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.core.cache import atomic_write, stable_hash
from labkit.errors import ConfigError
from labkit.reports._params import check_parameters, notebook_parameters
from labkit.reports._run import read_run, run_notebook

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["SweepResult", "grid_points", "load_grid", "sweep"]

RESULTS_FILE = "results.nc"
SUMMARY_FILE = "summary.html"


@dataclasses.dataclass(frozen=True)
class SweepResult:
    """What :func:`sweep` produced.

    Attributes:
        out_dir: the sweep folder.
        dataset: recorded values, one dimension per swept parameter, plus ``status``.
        ran: keys of the runs executed by this call.
        skipped: keys of the runs found complete and not run again.
        failed: keys of the runs that failed.
    """

    out_dir: Path
    dataset: xr.Dataset
    ran: tuple[str, ...]
    skipped: tuple[str, ...]
    failed: tuple[str, ...]


def load_grid(path: str | Path) -> dict[str, Any]:
    """Read a grid file: a YAML mapping of parameter name to a list of values (swept) or
    a single value (fixed for every run).

    Raises:
        ConfigError: when the file is not such a mapping.
    """
    import yaml

    try:
        grid = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"grid file {str(path)!r} does not exist") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"grid file {str(path)!r} is not valid YAML: {exc}") from exc
    if not isinstance(grid, dict) or not grid:
        raise ConfigError(
            f"grid file {str(path)!r} must map parameter names to lists of values, got {grid!r}"
        )
    return grid


def grid_points(grid: Mapping[str, Any]) -> tuple[dict[str, list[Any]], list[dict[str, Any]]]:
    """The swept axes (name -> values) and every point of the cartesian product.

    A list value is swept; any other value is fixed. An empty list is an error.
    """
    axes = {k: list(v) for k, v in grid.items() if isinstance(v, list | tuple)}
    fixed = {k: v for k, v in grid.items() if not isinstance(v, list | tuple)}
    for name, values in axes.items():
        if not values:
            raise ConfigError(f"grid axis {name!r} has no values")
        if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
            raise ConfigError(f"grid axis {name!r} repeats a value: {values!r}")
    points = [fixed | dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]
    return axes, points


def run_key(notebook: Path, params: Mapping[str, Any]) -> str:
    """The folder name of one run: a hash of the notebook's name and its parameters."""
    return stable_hash({"notebook": notebook.name, "parameters": dict(params)})


def _is_complete(run_dir: Path) -> bool:
    try:
        return read_run(run_dir).get("status") == "completed"
    except (ConfigError, json.JSONDecodeError):
        return False


def _run_one(notebook: str, params: dict[str, Any], run_dir: str, timeout: float | None) -> str:
    """Dask task: one run. Returns its status (a failing cell is a result, not a crash)."""
    result = run_notebook(notebook, params, out_dir=run_dir, timeout=timeout,
                          raise_on_failure=False)
    return result.status


def _client(workers: int, scheduler: str | None, threads_per_worker: int):
    from distributed import Client, LocalCluster

    if scheduler is not None:
        return Client(scheduler), None
    # dashboard_address=None turns the dashboard off (documented); the annotation says str.
    cluster = LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker,
                           processes=True,
                           dashboard_address=None)  # pyright: ignore[reportArgumentType]
    return Client(cluster), cluster


def sweep(
    notebook: str | Path,
    grid: Mapping[str, Any] | str | Path,
    *,
    out_dir: str | Path | None = None,
    workers: int = 2,
    scheduler: str | None = None,
    timeout: float | None = None,
    allowed_failures: int = 3,
    progress: bool = False,
) -> SweepResult:
    """Run ``notebook`` at every point of ``grid`` and collect the recorded values.

    Args:
        notebook: the notebook to sweep.
        grid: a mapping (or a YAML file of one) of parameter names to lists of values.
        out_dir: the sweep folder; defaults to ``reports/<stem>-sweep``.
        workers: processes of the local cluster (ignored with ``scheduler``).
        scheduler: address of an existing dask scheduler (``tcp://host:8786``); this
            is how a sweep goes beyond one machine.
        timeout: per-cell limit in seconds for each run.
        allowed_failures: how often a run may be restarted after its worker died.
        progress: print one line per finished run.

    Raises:
        labkit.errors.ParameterError: a grid name or value that does not fit the notebook's
            parameters (checked for every point before anything runs).
    """
    nb_path = Path(notebook)
    if not nb_path.is_file():
        raise ConfigError(f"notebook {str(notebook)!r} does not exist")
    if not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be an int >= 1, got {workers!r}")
    grid = load_grid(grid) if isinstance(grid, str | Path) else dict(grid)
    axes, points = grid_points(grid)
    declared = notebook_parameters(nb_path)
    checked = [check_parameters(declared, p, notebook=str(nb_path)) for p in points]
    out = Path(out_dir) if out_dir is not None else Path("reports") / f"{nb_path.stem}-sweep"
    runs = out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    keys = [run_key(nb_path, p) for p in checked]
    todo = [(k, p) for k, p in zip(keys, checked, strict=True) if not _is_complete(runs / k)]
    skipped = tuple(k for k in keys if k not in {t[0] for t in todo})

    if todo:
        import dask.config
        from distributed import as_completed

        with dask.config.set({"distributed.scheduler.allowed-failures": allowed_failures}):
            client, cluster = _client(workers, scheduler, threads_per_worker=1)
            try:
                futures = {
                    client.submit(_run_one, str(nb_path.resolve()), p, str((runs / k).resolve()),
                                  timeout, key=f"labkit-run-{k}", pure=False): k
                    for k, p in todo
                }
                for fut in as_completed(futures):
                    k = futures[fut]
                    try:
                        status = fut.result()
                    except Exception as exc:  # the worker died too often, or the task broke
                        status = f"error: {type(exc).__name__}: {exc}"
                    if progress:
                        print(f"[{k}] {status}", flush=True)
            finally:
                client.close()
                if cluster is not None:
                    cluster.close()

    dataset = collect(out, nb_path, axes, checked, keys)
    failed = tuple(k for k in keys if not _is_complete(runs / k))
    write_summary(out, axes, checked, keys)
    return SweepResult(out, dataset, tuple(k for k, _ in todo), skipped, failed)


def collect(
    out: Path, nb_path: Path, axes: Mapping[str, Sequence[Any]],
    points: Sequence[Mapping[str, Any]], keys: Sequence[str],
) -> xr.Dataset:
    """Gather the records of every run into a dataset, write it as ``results.nc``."""
    import numpy as np
    import xarray as xr

    shape = tuple(len(v) for v in axes.values())
    index = {k: tuple(list(axes[a]).index(p[a]) for a in axes) for k, p in zip(keys, points, strict=True)}
    records: dict[str, dict[tuple[int, ...], Any]] = {}
    status = np.full(shape, "missing", dtype=object)
    for k in keys:
        try:
            info = read_run(out / "runs" / k)
        except ConfigError:
            continue
        status[index[k]] = info.get("status", "missing")
        if info.get("status") != "completed":
            continue
        for name, value in (info.get("records") or {}).items():
            records.setdefault(name, {})[index[k]] = value

    dims = tuple(axes)
    data_vars: dict[str, Any] = {"status": (dims, status.astype(str))}
    for name, by_point in records.items():
        sample = np.asarray(next(iter(by_point.values())))
        if sample.dtype.kind in "US":
            arr = np.full(shape + sample.shape, "", dtype=object)
        else:
            arr = np.full(shape + sample.shape, np.nan, dtype=np.result_type(sample.dtype, float))
        for idx, value in by_point.items():
            value = np.asarray(value)
            if value.shape != sample.shape:
                raise ConfigError(
                    f"record {name!r} changes shape across runs: {sample.shape} and {value.shape}"
                )
            arr[idx] = value
        extra = tuple(f"{name}_dim{i}" for i in range(sample.ndim))
        data_vars[name] = (dims + extra, arr.astype(str) if arr.dtype == object else arr)
    coords = {a: _coord(v) for a, v in axes.items()}
    ds = xr.Dataset(data_vars, coords=coords,
                    attrs={"notebook": str(nb_path), "runs": json.dumps(dict(zip(keys, points, strict=True)))})
    tmp = out / f".{RESULTS_FILE}.tmp"
    ds.to_netcdf(tmp, engine="h5netcdf")
    tmp.replace(out / RESULTS_FILE)
    return ds


def _coord(values: Sequence[Any]) -> Any:
    import numpy as np

    if all(isinstance(v, bool | int | float) for v in values):
        return np.asarray(values)
    return np.asarray([v if isinstance(v, str) else json.dumps(v) for v in values])


def write_summary(
    out: Path, axes: Mapping[str, Sequence[Any]], points: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
) -> Path:
    """An HTML table: one row per run with its parameters, status, records and report."""
    rows = []
    record_names: list[str] = []
    infos = {}
    for k in keys:
        try:
            infos[k] = read_run(out / "runs" / k)
        except ConfigError:
            infos[k] = {"status": "missing"}
        for name in infos[k].get("records") or {}:
            if name not in record_names:
                record_names.append(name)
    head = "".join(f"<th>{html.escape(h)}</th>"
                   for h in [*axes, "status", *record_names, "report", "key"])
    for k, p in zip(keys, points, strict=True):
        info = infos[k]
        recs = info.get("records") or {}
        cells = [html.escape(json.dumps(p[a])) for a in axes]
        cells.append(html.escape(str(info.get("status"))))
        cells += [html.escape(_fmt(recs.get(n))) for n in record_names]
        report = out / "runs" / k / "report.html"
        cells.append(f'<a href="runs/{k}/report.html">report</a>' if report.exists() else "")
        cells.append(f"<code>{k}</code>")
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>labkit sweep</title>"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style></head><body>"
        f"<h1>Sweep of {len(keys)} runs</h1><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></body></html>\n"
    )
    return atomic_write(out / SUMMARY_FILE, page)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    text = json.dumps(value)
    return text if len(text) < 60 else text[:57] + "..."

