"""``labkit run`` under interruption and concurrency (issue 15, items 2, 3 and 4): the
parameters recorded are the ones the kernel received, a signal leaves ``status:
interrupted`` (SIGKILL: ``killed``, found on the next start) with no mix of old and new
files, one writer per folder, and fractional timeouts work. Each test starts real kernels
in real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labkit.reports import FolderLock, inspect_run, read_run
from tests.reliability.test_report_inputs import POINT, assert_named_error, labkit


def start(*args: str) -> subprocess.Popen[str]:
    exe = Path(sys.executable).with_name("labkit")
    return subprocess.Popen([str(exe), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=os.environ | {"PYTHONUNBUFFERED": "1"},
                            start_new_session=True)


def wait_for_kernel(log: Path, timeout: float = 120) -> None:
    """Until the notebook's first cell has run (it appends to ``log``)."""
    deadline = time.monotonic() + timeout
    while not (log.exists() and log.read_text().strip()):
        assert time.monotonic() < deadline, "the run never started its kernel"
        time.sleep(0.2)


def files_of(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir())


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir()
                  if p.name.startswith(f".{out.name}.") and not p.name.endswith(".lock"))


def test_a_fractional_timeout_runs_with_whole_seconds(tmp_path):
    out = tmp_path / "run"
    proc = labkit("run", str(POINT), "--timeout", "2.5", "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    info = read_run(out)
    assert info["status"] == "completed" and info["timeout_per_cell_s"] == 3


def test_rerunning_an_executed_report_records_what_the_kernel_received(tmp_path):
    first = tmp_path / "first"
    assert labkit("run", str(POINT), "-p", "a", "5", "--out", str(first), "--quiet").returncode == 0
    executed = first / "point.ipynb"
    assert "a = 5" in executed.read_text()  # it carries papermill's injected cell
    again = tmp_path / "again"
    proc = labkit("run", str(executed), "--out", str(again), "--quiet")
    assert proc.returncode == 0, proc.stderr
    info = read_run(again)
    assert info["parameters"]["a"] == 1 and info["records"]["value"] == 10  # the default ran
    override = tmp_path / "override"
    assert labkit("run", str(executed), "-p", "a", "3", "--out", str(override),
                  "--quiet").returncode == 0
    info = read_run(override)
    assert info["parameters"]["a"] == 3 and info["records"]["value"] == 30
    assert info["notebook_sha256"] == read_run(first)["notebook_sha256"]  # same content


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_leaves_an_interrupted_run_and_no_old_files(tmp_path, sig, code):
    out = tmp_path / "run"
    assert labkit("run", str(POINT), "-p", "a", "2", "--out", str(out), "--quiet").returncode == 0
    old = read_run(out)
    log = tmp_path / "log.jsonl"
    proc = start("run", str(POINT), "-p", "a", "3", "-p", "sleep_s", "60", "-p", "log", str(log),
                 "--out", str(out), "--quiet")
    wait_for_kernel(log)
    os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err[-2000:]
    assert f"labkit: interrupted by {signal.Signals(sig).name}" in err and "Traceback" not in err
    info = read_run(out)
    assert info["status"] == "interrupted"
    assert info["error"]["signal"] == signal.Signals(sig).name
    assert info["parameters"]["a"] == 3 and info["started"] >= old["started"]
    assert files_of(out) == ["kernel.log", "point.ipynb", "report.html", "run.json"]
    assert "a = 3" in (out / "point.ipynb").read_text()  # the new run's notebook, not the old
    assert inspect_run(out).state == "interrupted"
    assert leftovers(out) == []


def test_sigkill_is_found_as_killed_and_the_old_run_stays_whole(tmp_path):
    out = tmp_path / "run"
    assert labkit("run", str(POINT), "-p", "a", "2", "--out", str(out), "--quiet").returncode == 0
    before = {n: (out / n).read_bytes() for n in files_of(out)}
    log = tmp_path / "log.jsonl"
    proc = start("run", str(POINT), "-p", "a", "3", "-p", "sleep_s", "60", "-p", "log", str(log),
                 "--out", str(out), "--quiet")
    wait_for_kernel(log)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert {n: (out / n).read_bytes() for n in files_of(out)} == before  # no mix
    state = inspect_run(out)
    assert state.state == "killed" and state.info is not None and state.info["parameters"]["a"] == 3

    # The next start records the killed run, then runs; nothing is left behind.
    proc2 = labkit("run", str(POINT), "-p", "a", "4", "--out", str(out), "--quiet")
    assert proc2.returncode == 0, proc2.stderr
    assert read_run(out)["records"]["value"] == 40 and leftovers(out) == []


def test_a_second_run_into_a_busy_folder_is_refused(tmp_path):
    out = tmp_path / "run"
    log = tmp_path / "log.jsonl"
    first = start("run", str(POINT), "-p", "sleep_s", "120", "-p", "log", str(log), "--out",
                  str(out), "--quiet")
    try:
        wait_for_kernel(log)
        second = labkit("run", str(POINT), "-p", "a", "9", "--out", str(out), "--quiet")
        assert_named_error(second, f"run folder '{out}' is being written by pid {first.pid} on")
    finally:
        os.kill(first.pid, signal.SIGTERM)
        first.communicate(timeout=120)
    assert first.returncode == 143
    info = read_run(out)  # the first run's folder; the second wrote nothing
    assert info["parameters"]["a"] == 1 and info["status"] == "interrupted"


_HOLD = """
import sys, time
from labkit.reports import FolderLock
lock = FolderLock(sys.argv[1])
lock.acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_a_lock_whose_holder_died_is_taken_and_reported_stale(tmp_path):
    folder = tmp_path / "f"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(folder)], stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    lock = FolderLock(folder)
    assert lock.is_held() and lock.holder()["pid"] == holder.pid  # type: ignore[index]
    with pytest.raises(Exception, match=f"is being written by pid {holder.pid} on"):
        lock.acquire()
    holder.kill()
    holder.wait()
    assert not lock.is_held()
    lock.acquire()
    try:
        assert lock.stale is not None and lock.stale["pid"] == holder.pid
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    finally:
        lock.release()
    assert lock.path.read_text() == ""  # released cleanly: nothing stale next time
    lock.acquire()
    assert lock.stale is None
    lock.release()
