"""labkit sweep: a cartesian grid on dask.distributed, resumable, robust to a dead worker."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from labkit.errors import ConfigError, ParameterError
from labkit.reports import grid_points, read_run, sweep
from tests.reports.test_run import labkit

SQUARE = Path(__file__).parent / "notebooks" / "square.ipynb"


def _folders(out: Path) -> list[Path]:
    """The point folders (not the hidden lock files beside them)."""
    return sorted(d for d in (out / "runs").iterdir() if d.is_dir() and not d.name.startswith("."))


def _completed(out: Path) -> list[Path]:
    return [d for d in _folders(out) if read_run(d)["status"] == "completed"]


def test_grid_points_are_the_cartesian_product_with_fixed_values():
    axes, points = grid_points({"a": [1, 2, 3], "b": [0.0, 1.0], "name": "z"})
    assert axes == {"a": [1, 2, 3], "b": [0.0, 1.0]}
    assert len(points) == 6 and {"a": 3, "b": 1.0, "name": "z"} in points
    with pytest.raises(ConfigError, match="'a' has no values"):
        grid_points({"a": []})
    with pytest.raises(ConfigError, match="repeats a value"):
        grid_points({"a": [1, 1]})


def test_bad_grid_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(ParameterError, match="unknown parameter 'c'"):
        sweep(SQUARE, {"a": [1, 2], "c": [0]}, out_dir=tmp_path / "s")
    with pytest.raises(ParameterError, match="parameter 'a' must be int"):
        sweep(SQUARE, {"a": [1, "two"]}, out_dir=tmp_path / "s")
    assert not (tmp_path / "s").exists()


@pytest.mark.slow  # a two-worker dask cluster, four kernels, then a rerun: ~20 s on 2 cores
def test_two_by_two_grid_on_two_workers_then_a_rerun_runs_nothing(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("a: [1, 2]\nb: [0.0, 10.0]\nname: fixed\n")
    out = tmp_path / "sweep"
    proc = labkit("sweep", str(SQUARE), "--grid", str(grid), "--workers", "2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "4 run(s) executed, 0 already complete, 0 failed" in proc.stdout
    ds = xr.open_dataset(out / "results.nc", engine="h5netcdf")
    assert dict(ds.sizes) == {"a": 2, "b": 2, "vector_dim0": 3}
    np.testing.assert_array_equal(ds["square"].values, [[1.0, 11.0], [4.0, 14.0]])
    np.testing.assert_array_equal(ds["vector"].sel(a=2, b=10.0).values, [0, 2, 4])
    assert ds["label"].sel(a=1, b=10.0).item() == "1-10.0"
    assert (ds["status"].values == "done").all()
    assert len(_completed(out)) == 4
    summary = (out / "summary.html").read_text()
    assert summary.count('report.html">report</a>') == 4
    stamps = {d.name: (d / "run.json").stat().st_mtime_ns for d in _folders(out)}

    again = labkit("sweep", str(SQUARE), "--grid", str(grid), "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert "0 run(s) executed, 4 already complete" in again.stdout
    assert {d.name: (d / "run.json").stat().st_mtime_ns for d in _folders(out)} == stamps


@pytest.mark.slow  # two cell timeouts and three kernels: ~30 s on 2 cores
def test_failed_points_are_reported_and_retried_on_the_next_sweep(tmp_path):
    result = sweep(SQUARE, {"a": [1], "sleep_s": [0.0, 30.0]}, out_dir=tmp_path / "s",
                   workers=2, timeout=4)
    assert len(result.failed) == 1 and len(result.ran) == 2
    status = result.dataset["status"].values.ravel().tolist()
    assert sorted(status) == ["done", "failed"]
    assert np.isnan(result.dataset["square"].values).sum() == 1  # the failed point: no value
    again = sweep(SQUARE, {"a": [1], "sleep_s": [0.0, 30.0]}, out_dir=tmp_path / "s",
                  workers=1, timeout=4)
    assert again.ran == result.failed and len(again.skipped) == 1


@pytest.mark.slow
def test_killing_a_worker_mid_sweep_loses_and_duplicates_nothing(tmp_path):
    from distributed import Client, LocalCluster

    out = tmp_path / "sweep"
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    client = Client(cluster)
    try:
        pids = client.run(os.getpid)
        errors: list[BaseException] = []

        def go():
            try:
                sweep(SQUARE, {"a": [1, 2], "b": [0.0, 1.0], "sleep_s": 4.0}, out_dir=out,
                      scheduler=cluster.scheduler_address)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        thread = threading.Thread(target=go)
        thread.start()
        # Wait until a run is executing on a worker, then kill that worker's process.
        deadline = time.monotonic() + 120
        victim = None
        while victim is None and time.monotonic() < deadline:
            processing = client.processing()
            busy = [w for w, tasks in processing.items() if tasks]
            running = list((out / "runs").glob(".*.staging-*/run.json")) if (out / "runs").exists() else []
            if busy and running:
                victim = busy[0]
            time.sleep(0.2)
        assert victim is not None, "no run started"
        os.kill(pids[victim], signal.SIGKILL)
        thread.join(timeout=300)
        assert not thread.is_alive() and not errors, errors
    finally:
        client.close()
        cluster.close()

    runs = _folders(out)
    assert len(runs) == 4 and len(_completed(out)) == 4
    ds = xr.open_dataset(out / "results.nc", engine="h5netcdf")
    np.testing.assert_array_equal(ds["square"].values, [[1.0, 2.0], [4.0, 5.0]])
    keys = json.loads(ds.attrs["runs"])
    assert sorted(keys) == [r.name for r in runs]
