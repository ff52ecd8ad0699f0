"""labkit run: parameters checked before a kernel starts, reports, run.json, failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from labkit.errors import RunFailedError
from labkit.reports import read_run, run_notebook
from labkit.reports._html import external_references

NOTEBOOKS = Path(__file__).parent / "notebooks"


def labkit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The installed ``labkit`` console script (beside this interpreter)."""
    exe = Path(sys.executable).with_name("labkit")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, env=os.environ | {"PYTHONUNBUFFERED": "1"})


def test_unknown_parameter_fails_before_a_kernel_starts(repo, tmp_path):
    out = tmp_path / "run"
    proc = labkit("run", str(repo / "notebooks/00_tour.ipynb"), "-p", "no_such", "1",
                  "--out", str(out))
    assert proc.returncode == 2
    assert "unknown parameter 'no_such'" in proc.stderr
    assert "n_members = 64  (int)" in proc.stderr  # the valid parameters with defaults
    assert "Executing" not in proc.stderr  # no progress bar: nothing was executed
    assert not out.exists()


def test_wrong_type_fails_before_a_kernel_starts(repo, tmp_path):
    proc = labkit("run", str(repo / "notebooks/00_tour.ipynb"), "-p", "n_members", "many",
                  "--out", str(tmp_path / "run"))
    assert proc.returncode == 2
    assert "parameter 'n_members' must be int like its default 64, got 'many'" in proc.stderr


def test_successful_run_writes_notebook_report_and_run_json(tmp_path):
    params_file = tmp_path / "p.yaml"
    params_file.write_text("a: 3\nb: 1\n")
    out = tmp_path / "run"
    proc = labkit("run", str(NOTEBOOKS / "square.ipynb"), "-f", str(params_file),
                  "-p", "b", "0.25", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "Executing" in proc.stderr  # cell-by-cell progress
    assert "square = 9.25" in proc.stdout
    info = read_run(out)
    assert info["status"] == "completed"
    assert info["parameters"] == {"a": 3, "b": 0.25, "sleep_s": 0.0, "name": "x"}
    assert info["overrides"] == {"a": 3, "b": 0.25}
    assert info["records"] == {"square": 9.25, "vector": [0, 3, 6], "label": "3-0.25"}
    assert info["error"] is None and info["duration_s"] > 0
    assert len(info["git"]["commit"]) == 40
    assert info["versions"]["labkit"] and info["versions"]["torch"]
    assert info["device"]["device"] in ("cpu", "cuda")
    executed = nbformat.read(out / "square.ipynb", as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    html = (out / "report.html").read_text()
    assert "9.25" in html and external_references(html) == []
    assert not list(out.glob(".*"))  # no temporary files left behind


def test_failing_cell_exits_non_zero_and_keeps_the_partial_run(tmp_path):
    out = tmp_path / "run"
    proc = labkit("run", str(NOTEBOOKS / "fails.ipynb"), "-p", "level", "7", "--out", str(out))
    assert proc.returncode == 1
    assert "ValueError: boom 7" in proc.stderr
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "failed"
    err = info["error"]
    assert err["ename"] == "ValueError" and err["evalue"] == "boom 7"
    assert 'raise ValueError(f"boom {level}")' in err["source"]
    assert "ValueError" in err["traceback"] and "\x1b[" not in err["traceback"]
    assert info["records"] == {"before": 1.0}  # the cell after the failure never ran
    partial = nbformat.read(out / "fails.ipynb", as_version=4)
    assert partial.cells[err["cell_index"]].source == err["source"]
    assert (out / "report.html").exists()


def test_api_raises_run_failed_with_the_run_folder(tmp_path):
    with pytest.raises(RunFailedError, match="boom 3") as info:
        run_notebook(NOTEBOOKS / "fails.ipynb", out_dir=tmp_path / "r")
    assert info.value.run_dir == str(tmp_path / "r")
    result = run_notebook(NOTEBOOKS / "fails.ipynb", out_dir=tmp_path / "r2",
                          raise_on_failure=False)
    assert result.status == "failed" and result.error["ename"] == "ValueError"


def test_the_callers_environment_is_left_as_it_was(tmp_path, monkeypatch):
    monkeypatch.setenv("PLOTLY_RENDERER", "browser")
    run_notebook(NOTEBOOKS / "square.ipynb", out_dir=tmp_path / "r")
    assert os.environ["PLOTLY_RENDERER"] == "browser"
    monkeypatch.delenv("PLOTLY_RENDERER")
    run_notebook(NOTEBOOKS / "square.ipynb", out_dir=tmp_path / "r2")
    assert "PLOTLY_RENDERER" not in os.environ


def test_cell_timeout_is_a_failed_run(tmp_path):
    result = run_notebook(NOTEBOOKS / "square.ipynb", {"sleep_s": 30.0}, out_dir=tmp_path / "r",
                          timeout=3, raise_on_failure=False)
    assert result.status == "failed"
    assert "timed out" in (result.error["evalue"] + result.error["traceback"]).lower()


def test_list_shows_every_notebook_with_parameters(repo):
    proc = labkit("list", str(NOTEBOOKS), str(repo / "notebooks"))
    assert proc.returncode == 0, proc.stderr
    assert "square.ipynb" in proc.stdout and "fails.ipynb" in proc.stdout
    assert "00_tour.ipynb" in proc.stdout
    assert "  a = 2  (int)  # an int" in proc.stdout
    assert "  n_members = 64  (int)" in proc.stdout


def test_missing_notebook_is_a_clear_error(tmp_path):
    proc = labkit("run", str(tmp_path / "nope.ipynb"))
    assert proc.returncode == 2 and "nope.ipynb' does not exist" in proc.stderr
