"""Bad input to ``labkit run``, ``sweep`` and ``list``: a named error, exit 2, no traceback,
and nothing started or written (issue 15, item 4). None of these tests starts a kernel."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labkit.errors import ConfigError, ParameterError
from labkit.reports import check_parameters, load_grid, notebook_parameters, parse_yaml
from labkit.reports._params import parse_value

HERE = Path(__file__).parent
POINT = HERE / "notebooks" / "point.ipynb"


def labkit(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("labkit")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env=os.environ | {"PYTHONUNBUFFERED": "1"})


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``labkit ARGS`` in this process (much faster than a subprocess for the many input
    checks; a named error is a return of 2 here, anything else would raise)."""
    import contextlib
    import io

    from labkit.reports.cli import main

    out, err = io.StringIO(), io.StringIO()
    previous = Path.cwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse's own usage errors
                code = int(exc.code or 0)
    finally:
        os.chdir(previous)
    return subprocess.CompletedProcess(["labkit", *args], code, out.getvalue(), err.getvalue())


def assert_named_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "labkit: error: " in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr[-2000:])
    assert "Executing" not in proc.stderr  # no kernel started


# --- parameter files ---------------------------------------------------------------------

@pytest.mark.parametrize(("content", "needles"), [
    (b"a: [1, 2\n", ("is not valid YAML",)),
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", ("is not UTF-8 text",)),
    (b"- 1\n- 2\n", ("must map parameter names to values, got [1, 2]",)),
    (b"", ("must map parameter names to values, got None",)),
    (b"1: 2\n", ("parameter names must be text, got [1]",)),
])
def test_a_bad_parameters_file_is_a_named_error(tmp_path, content, needles):
    bad = tmp_path / "p.yaml"
    bad.write_bytes(content)
    out = tmp_path / "run"
    proc = labkit("run", str(POINT), "-f", str(bad), "--out", str(out))
    assert_named_error(proc, f"parameters file '{bad}'", *needles)
    assert not out.exists()


def test_a_folder_or_missing_parameters_file_is_a_named_error(tmp_path):
    assert_named_error(cli("run", str(POINT), "-f", str(tmp_path), "--out", str(tmp_path / "o")),
                       "is a folder; expected a YAML file")
    assert_named_error(cli("run", str(POINT), "-f", str(tmp_path / "nope.yaml")),
                       "does not exist")


# --- notebooks ---------------------------------------------------------------------------

@pytest.mark.parametrize(("content", "needle"), [
    (b"{not json", "is not a Jupyter notebook"),
    (b"\xff\xfe\x00binary\x00", "is not"),
    (b"[1, 2, 3]", "is not a Jupyter notebook"),
])
def test_a_notebook_that_is_not_a_notebook_is_a_named_error(tmp_path, content, needle):
    bad = tmp_path / "bad.ipynb"
    bad.write_bytes(content)
    assert_named_error(cli("run", str(bad), "--out", str(tmp_path / "o")), str(bad), needle)
    assert_named_error(cli("sweep", str(bad), "--grid", str(_grid(tmp_path)),
                              "--out", str(tmp_path / "s")), needle)


def test_a_folder_as_notebook_is_a_named_error(tmp_path):
    (tmp_path / "x.ipynb").mkdir()
    assert_named_error(cli("run", str(tmp_path / "x.ipynb")), "is a folder; expected a .ipynb file")


def _notebook_with_parameters(path: Path, source: str) -> Path:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[new_code_cell(source, metadata={"tags": ["parameters"]}),
                             new_code_cell("print(1)")])
    nbformat.write(nb, str(path))
    return path


@pytest.mark.parametrize(("source", "needle"), [
    ("import os\n", "line 1 of the parameters cell is not 'name = literal': 'import os'"),
    ("a = 1\nif a:\n    b = 2\n", "line 2 of the parameters cell is not 'name = literal'"),
    ("for i in range(3):\n    pass\n", "line 1 of the parameters cell is not 'name = literal'"),
    ("a = os.getcwd()\n", "the default of parameter 'a' is not a literal"),
    ("a = (\n", "the parameters cell is not valid Python"),
    ("a = 0  # size [>= 1]\n", "the default breaks its own constraint: parameter 'a' must be >= 1"),
    ("a = 1  # size [>= one]\n", "constraint clause '>= one' in [>= one] is not a comparison"),
])
def test_a_bad_parameters_cell_is_a_named_error_and_list_goes_on(tmp_path, source, needle):
    bad = _notebook_with_parameters(tmp_path / "a_bad.ipynb", source)
    assert_named_error(cli("run", str(bad), "--out", str(tmp_path / "o")), needle)
    good = shutil.copy(POINT, tmp_path / "b_good.ipynb")
    listing = cli("list", str(tmp_path))
    assert listing.returncode == 0 and "Traceback" not in listing.stderr, listing.stderr
    assert needle in listing.stdout
    assert f"{good}\n  a = 1  (int)  # first axis [>= 0]" in listing.stdout  # the rest is listed


# --- output folders ----------------------------------------------------------------------

def test_out_that_is_a_file_is_a_named_error(tmp_path):
    target = tmp_path / "taken"
    target.write_text("mine")
    assert_named_error(cli("run", str(POINT), "--out", str(target)),
                       f"output folder '{target}' is a file; expected a folder")
    assert target.read_text() == "mine"
    assert_named_error(cli("sweep", str(POINT), "--grid", str(_grid(tmp_path)), "--out",
                              str(target)), f"sweep folder '{target}' is a file")


def test_out_that_cannot_be_written_is_a_named_error(tmp_path):
    # /sys refuses new entries to everyone (root included), unlike a chmod'ed folder.
    assert_named_error(cli("run", str(POINT), "--out", "/sys/labkit-test/run"),
                       "cannot create the folder '/sys/labkit-test' for the run")
    assert_named_error(cli("run", str(POINT), "--out", "/sys/labkit-test-run"),
                       "cannot create the lock file /sys/.labkit-test-run.lock")
    assert_named_error(cli("sweep", str(POINT), "--grid", str(_grid(tmp_path)),
                              "--out", "/sys/labkit-test"), "cannot create the sweep folder")


def test_a_run_never_writes_into_the_folder_of_its_source(tmp_path):
    source_dir = tmp_path / "notebooks"
    source_dir.mkdir()
    nb = shutil.copy(POINT, source_dir / "point.ipynb")
    before = Path(nb).read_bytes()
    for out in (source_dir, tmp_path):  # the folder itself, or one that holds it
        assert_named_error(cli("run", str(nb), "--out", str(out)),
                           "refusing to write the run into", "which the run would replace")
    assert Path(nb).read_bytes() == before
    assert sorted(p.name for p in source_dir.iterdir()) == ["point.ipynb"]


def test_the_tour_into_its_own_folder_is_refused(repo, tmp_path):
    before = (repo / "notebooks/00_tour.ipynb").read_bytes()
    assert_named_error(cli("run", "notebooks/00_tour.ipynb", "--out", "notebooks", cwd=repo),
                       "refusing to write the run into 'notebooks'")
    assert (repo / "notebooks/00_tour.ipynb").read_bytes() == before


def test_a_folder_of_other_files_is_not_replaced(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    assert_named_error(cli("run", str(POINT), "--out", str(out)),
                       "holds files but no run.json: it is not a labkit run")
    assert (out / "thesis.tex").read_text() == "precious"


# --- timeouts, sizes, scheduler ------------------------------------------------------------

@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_a_bad_timeout_is_refused_before_a_kernel_starts(tmp_path, value):
    assert_named_error(cli("run", str(POINT), "--timeout", value, "--out", str(tmp_path / "o")),
                       "timeout must be a finite number of seconds > 0")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("name", "value", "needle"), [
    ("n_members", "0", "parameter 'n_members' must be >= 2, got 0"),
    ("dt", "0", "parameter 'dt' must be > 0, got 0.0"),
    ("dt", "-0.01", "parameter 'dt' must be > 0, got -0.01"),
    ("device", "gpu", "parameter 'device' must be one of \"auto\", \"cpu\", \"cuda\", got 'gpu'"),
    ("fit_window", "[2.0, -1]", "parameter 'fit_window' must be >= 0, got [2.0, -1] (element -1)"),
])
def test_the_tours_bad_sizes_fail_before_the_kernel(repo, tmp_path, name, value, needle):
    start = time.monotonic()
    proc = cli("run", str(repo / "notebooks/00_tour.ipynb"), "-p", name, value,
                  "--out", str(tmp_path / "o"))
    assert_named_error(proc, needle)
    assert time.monotonic() - start < 30  # it used to fail in cell 7 after ~50 s
    assert not (tmp_path / "o").exists()


def test_a_scheduler_that_is_not_there_is_a_named_error(tmp_path):
    import socket

    with socket.socket() as s:  # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    proc = cli("sweep", str(POINT), "--grid", str(_grid(tmp_path)), "--out", str(tmp_path / "s"),
                  "--scheduler", f"tcp://127.0.0.1:{port}", "--connect-timeout", "2")
    assert_named_error(proc, f"no dask scheduler answered at 'tcp://127.0.0.1:{port}' within 2 s")
    assert time.monotonic() - start < 30


def test_debug_shows_the_traceback_of_a_named_error(tmp_path):
    proc = labkit("--debug", "run", str(tmp_path / "missing.ipynb"))
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr and "does not exist" in proc.stderr


# --- one typing rule ----------------------------------------------------------------------

@pytest.mark.parametrize(("text", "value"), [
    ("yes", "yes"), ("no", "no"), ("on", "on"), ("0755", 755), ("0o755", 0o755), ("0x1f", 31),
    ("1e-3", 1e-3), ("1.5e3", 1500.0), ("1", 1), ("1.0", 1.0), ("true", True), ("False", False),
    ("~", None), ("null", None), ("2024-01-01", "2024-01-01"), ("[1, 2.0, x]", [1, 2.0, "x"]),
    (".inf", float("inf")), ("'0755'", "0755"),
])
def test_values_follow_the_yaml_core_schema(text, value):
    assert parse_value(text) == value and type(parse_value(text)) is type(value)


def test_the_same_rule_for_p_f_and_grid_files(tmp_path):
    text = "rate: 1e-3\nlabel: yes\nmode: 0755\nwhen: 2024-01-01\n"
    grid = tmp_path / "g.yaml"
    grid.write_text(text)
    expected = {"rate": 1e-3, "label": "yes", "mode": 755, "when": "2024-01-01"}
    assert load_grid(grid) == expected
    assert parse_yaml(text) == expected
    pairs = [line.split(": ", 1) for line in text.splitlines()]
    assert {name: parse_value(value) for name, value in pairs} == expected  # -p NAME VALUE


def test_a_string_parameter_given_a_number_says_to_quote_it(tmp_path):
    nb = _notebook_with_parameters(tmp_path / "s.ipynb", 'label = "x"  # a label\n')

    with pytest.raises(ParameterError, match=r"must be str .* got 755 \(int\) \(quote it"):
        check_parameters(notebook_parameters(nb), {"label": parse_value("0755")})


def test_constraints_are_read_from_the_comment(tmp_path):
    nb = _notebook_with_parameters(tmp_path / "c.ipynb",
                                   'n = 4  # members [>= 1, <= 8]\nunit = "s"  # time unit [s]\n'
                                   'mode = "a"  # [one of "a", "b"]\n')
    params = notebook_parameters(nb)
    assert params["n"].constraint == ">= 1, <= 8" and params["n"].help == "members"
    assert params["unit"].constraint == "" and params["unit"].help == "time unit [s]"
    assert params["n"].violation(9) == "parameter 'n' must be >= 1, <= 8, got 9"
    assert params["n"].violation(True) is not None  # a bool is not a number here
    assert params["mode"].violation("b") is None and params["mode"].violation("c") is not None


def test_a_grid_whose_values_coincide_after_typing_is_refused(tmp_path):
    from labkit.reports import sweep

    with pytest.raises(ConfigError, match=r"grid axis 'sleep_s' lists \[1, 1.0\], which are "
                                          r"\[1.0, 1.0\]"):
        sweep(POINT, {"sleep_s": [1, 1.0]}, out_dir=tmp_path / "s")
    assert not (tmp_path / "s").exists()


def _grid(tmp_path: Path) -> Path:
    grid = tmp_path / "grid.yaml"
    grid.write_text(json.dumps({"a": [1, 2]}))
    return grid
