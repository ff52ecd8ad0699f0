"""Sweeps that never report a stale or wrong result (issue 15, items 1, 3 and 5, and the
acceptance's fault injection): identity by notebook content, ``--status``, verification
of every point's files, typed grids and records, shared work between concurrent sweeps,
and a sweep SIGKILLed five times that still ends with exactly the right results."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
import xarray as xr

from labkit.reports import read_run, sweep, sweep_status
from tests.reliability.test_report_inputs import POINT, labkit


def folders(out: Path) -> dict[str, Path]:
    return {d.name: d for d in (out / "runs").iterdir() if d.is_dir() and not d.name.startswith(".")}


def starts(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def edit(notebook: Path, old: str, new: str) -> None:
    nb = nbformat.read(notebook, as_version=4)
    cell = next(c for c in nb.cells if old in c.source)
    cell.source = cell.source.replace(old, new)
    nbformat.write(nb, notebook)


@pytest.mark.slow  # three sweeps of two points: ~40 s on 2 cores
def test_an_edited_notebook_reruns_every_point_and_status_says_stale(tmp_path):
    nb = Path(shutil.copy(POINT, tmp_path / "point.ipynb"))
    out, log = tmp_path / "sweep", tmp_path / "log.jsonl"
    grid = {"a": [1, 2], "log": str(log)}
    first = sweep(nb, grid, out_dir=out, workers=2)
    assert len(first.ran) == 2 and first.dataset["value"].values.tolist() == [10.0, 20.0]
    assert [s.state for _, _, s in sweep_status(nb, grid, out_dir=out)] == ["done", "done"]

    edit(nb, "record(\"value\", 10 * a + b)", "record(\"value\", 100 * a + b)")
    states = sweep_status(nb, grid, out_dir=out)
    assert [s.state for _, _, s in states] == ["stale", "stale"]
    assert "the notebook's content changed" in states[0][2].reason
    status = labkit("sweep", str(nb), "--grid", str(_grid_file(tmp_path, grid)), "--out", str(out),
                    "--status")
    assert status.returncode == 0 and "2 stale of 2 points" in status.stdout

    again = sweep(nb, grid, out_dir=out, workers=2)
    assert len(again.ran) == 2 and not again.skipped
    assert again.dataset["value"].values.tolist() == [100.0, 200.0]
    ds = xr.open_dataset(out / "results.nc", engine="h5netcdf")
    assert ds["value"].values.tolist() == [100.0, 200.0]  # the file is not the old one
    assert len(starts(log)) == 4

    # A different notebook of the same name, into the same folder: not reused either.
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other = Path(shutil.copy(nb, other_dir / "point.ipynb"))
    edit(other, "100 * a + b", "1000 * a + b")
    third = sweep(other, grid, out_dir=out, workers=2)
    assert len(third.ran) == 2 and third.dataset["value"].values.tolist() == [1000.0, 2000.0]

    # Outputs alone do not change the identity: an executed copy is the same notebook.
    executed = folders(out)[third.ran[0]] / "point.ipynb"
    assert [s.state for _, _, s in sweep_status(executed, grid, out_dir=out)] == ["done", "done"]


@pytest.mark.slow  # two sweeps of three points: ~30 s on 2 cores
def test_a_deleted_report_or_corrupt_run_json_reruns_that_point_only(tmp_path):
    out, log = tmp_path / "sweep", tmp_path / "log.jsonl"
    grid = {"a": [1, 2, 3], "log": str(log)}
    first = sweep(POINT, grid, out_dir=out, workers=2)
    assert len(first.ran) == 3
    runs = folders(out)
    keys = sorted(runs)
    (runs[keys[0]] / "report.html").unlink()
    (runs[keys[1]] / "run.json").write_text("{ not json")
    states = {k: s for _, k, s in sweep_status(POINT, grid, out_dir=out)}
    assert states[keys[0]].state == "corrupt" and "report.html is missing" in states[keys[0]].reason
    assert states[keys[1]].state == "corrupt" and "cannot be read as JSON" in states[keys[1]].reason
    assert states[keys[2]].state == "done"
    proc = labkit("sweep", str(POINT), "--grid", str(_grid_file(tmp_path, grid)), "--out", str(out))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "2 run(s) executed, 1 already complete, 0 failed" in proc.stdout
    assert len(starts(log)) == 5


@pytest.mark.slow  # six points on two workers: ~30 s on 2 cores
def test_results_are_indexed_by_typed_values_and_mixed_records_kept_faithfully(tmp_path):
    out = tmp_path / "sweep"
    xs = [1, True, 1.0, "1", [1, 2], "fail"]
    with pytest.warns(UserWarning, match="record 'x' changes kind or shape between points"):
        result = sweep(POINT, {"x": xs}, out_dir=out, workers=2)
    assert len(result.ran) == 6 and len(result.failed) == 1  # "fail" raised; the rest stand
    ds = xr.open_dataset(out / "results.nc", engine="h5netcdf")
    assert ds["x"].attrs["labkit_encoding"] == "json"  # the coordinate: typed JSON text
    coords = [json.loads(c) for c in ds["x"].values.tolist()]
    assert coords == xs and [type(c) for c in coords] == [type(x) for x in xs]
    status = dict(zip(map(json.dumps, xs), ds["status"].values.tolist(), strict=True))
    assert status == {json.dumps(x): ("failed" if x == "fail" else "done") for x in xs}
    # The record x (named like the axis, so stored as record_x) is kept as typed JSON text.
    assert ds["record_x"].attrs["labkit_encoding"] == "json"
    kept = [json.loads(v) if v else None for v in ds["record_x"].values.tolist()]
    assert kept[:5] == xs[:5] and [type(v) for v in kept[:5]] == [type(x) for x in xs[:5]]
    assert kept[5] is None  # the failed point has no value
    assert any("record 'x'" in r and "(record_x)" in r for r in result.problems)
    values = ds["value"].values.tolist()
    assert values[:5] == [10.0] * 5 and np.isnan(values[5])


@pytest.mark.slow  # two sweeps sharing four points: ~40 s on 2 cores
def test_two_sweeps_into_one_folder_share_the_points(tmp_path):
    out, log = tmp_path / "sweep", tmp_path / "log.jsonl"
    grid = _grid_file(tmp_path, {"a": [1, 2, 3, 4], "sleep_s": 1.0, "log": str(log)})
    args = ("sweep", str(POINT), "--grid", str(grid), "--out", str(out), "--workers", "1")
    exe = Path(sys.executable).with_name("labkit")
    procs = [subprocess.Popen([str(exe), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-2000:]
    ran = [int(o.split(" run(s) executed")[0].split()[-1]) for o, _ in outputs]
    assert sum(ran) == 4  # every point ran once, in one sweep or the other
    assert sorted((s["a"]) for s in starts(log)) == [1, 2, 3, 4]
    ds = xr.open_dataset(out / "results.nc", engine="h5netcdf")
    assert ds["value"].values.tolist() == [10.0, 20.0, 30.0, 40.0]
    assert (ds["status"].values == "done").all()


@pytest.mark.slow  # two kernels started, then stopped: ~20 s on 2 cores
def test_a_sigterm_to_a_sweep_records_its_points_as_interrupted(tmp_path):
    out, log = tmp_path / "sweep", tmp_path / "log.jsonl"
    grid = _grid_file(tmp_path, {"a": [1, 2], "sleep_s": 120.0, "log": str(log)})
    exe = Path(sys.executable).with_name("labkit")
    proc = subprocess.Popen([str(exe), "sweep", str(POINT), "--grid", str(grid), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 180
    while len(starts(log)) < 2:  # both points are running in their kernels
        assert time.monotonic() < deadline and proc.poll() is None, "the sweep never started"
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert "labkit: interrupted by SIGTERM" in err
    states = sweep_status(POINT, grid, out_dir=out)
    assert [s.state for _, _, s in states] == ["interrupted", "interrupted"]
    ds = xr.open_dataset(out / "results.nc", engine="h5netcdf")
    assert (ds["status"].values == "interrupted").all()


@pytest.mark.slow  # a 4x4 sweep killed five times, then finished: ~2-3 min on 2 cores
def test_a_sweep_sigkilled_five_times_ends_with_exactly_the_right_results(tmp_path):
    out, log = tmp_path / "sweep", tmp_path / "log.jsonl"
    grid = _grid_file(tmp_path, {"a": [0, 1, 2, 3], "b": [0, 1, 2, 3], "log": str(log)})
    args = ("sweep", str(POINT), "--grid", str(grid), "--out", str(out), "--workers", "2")
    exe = Path(sys.executable).with_name("labkit")
    rng = random.Random(15)
    done_before: dict[str, int] = {}  # point key -> kernel pid of its completed run
    for round_ in range(5):
        # A random moment, measured in progress rather than seconds (a loaded machine may
        # take many seconds to start dask): after 1 to 3 more points started their kernel
        # (3 in the first round: with 2 workers, one point has then completed), plus 0-3 s.
        proc = subprocess.Popen([str(exe), *args], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        target = len(starts(log)) + (3 if round_ == 0 else rng.randint(1, 3))
        deadline = time.monotonic() + 300
        while len(starts(log)) < target and proc.poll() is None:
            assert time.monotonic() < deadline, "the sweep made no progress"
            time.sleep(0.1)
        time.sleep(rng.uniform(0.0, 3.0))
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI, the scheduler, nannies, workers
        proc.wait()
        for key, folder in folders(out).items() if (out / "runs").exists() else []:
            try:
                info = read_run(folder)
            except Exception:
                continue
            if info.get("status") == "completed":
                done_before.setdefault(key, info["records"]["kernel_pid"])
    final = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=900)
    assert final.returncode == 0, final.stderr[-3000:]

    ds = xr.open_dataset(out / "results.nc", engine="h5netcdf")
    expected = [[10.0 * a + b for b in range(4)] for a in range(4)]
    assert ds["value"].values.tolist() == expected
    assert (ds["status"].values == "done").all()
    runs = folders(out)
    assert len(runs) == 16
    assert not [p for p in (out / "runs").iterdir() if ".staging-" in p.name or ".old-" in p.name]
    for key, pid in done_before.items():  # a completed point was never run again
        assert read_run(runs[key])["records"]["kernel_pid"] == pid, key
    assert done_before  # the first round saw a completed point


def _grid_file(tmp_path: Path, grid: dict) -> Path:
    path = tmp_path / f"grid-{len(list(tmp_path.glob('grid-*')))}.yaml"
    path.write_text(json.dumps(grid))
    return path
