"""Reading and checking a notebook's parameters cell (no kernel involved)."""

from __future__ import annotations

import nbformat
import pytest

from labkit.errors import ParameterError
from labkit.reports import check_parameters, notebook_parameters
from labkit.reports._params import parse_value

HERE = "tests/reports/notebooks/square.ipynb"


def _nb(source: str, tagged: bool = True) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    if tagged:
        cell.metadata["tags"] = ["parameters"]
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("x"), cell])


def test_reads_names_defaults_kinds_and_comments(repo):
    params = notebook_parameters(repo / HERE)
    assert list(params) == ["a", "b", "sleep_s", "name"]
    assert (params["a"].default, params["a"].kind, params["a"].help) == (2, "int", "an int")
    assert (params["b"].default, params["b"].kind) == (0.5, "float")
    assert (params["name"].default, params["name"].kind) == ("x", "str")
    assert params["b"].describe() == "b = 0.5  (float)  # a float"


def test_missing_parameters_cell_is_an_error():
    with pytest.raises(ParameterError, match="no code cell tagged 'parameters'"):
        notebook_parameters(_nb("a = 1", tagged=False))


@pytest.mark.parametrize("source, bad", [("a = f(1)", "f(1)"), ("a, b = 1, 2", "a, b = 1, 2"),
                                        ("print(3)", "print(3)")])
def test_non_literal_parameters_are_named(source, bad):
    with pytest.raises(ParameterError, match=bad.replace("(", r"\(").replace(")", r"\)")):
        notebook_parameters(_nb(source))


def test_unknown_name_is_named_and_valid_ones_listed(repo):
    params = notebook_parameters(repo / HERE)
    with pytest.raises(ParameterError) as info:
        check_parameters(params, {"no_such": 1, "a": 3})
    text = str(info.value)
    assert "unknown parameter 'no_such'" in text
    for line in ("a = 2  (int)", "b = 0.5  (float)", "sleep_s = 0.0", "name = 'x'  (str)"):
        assert line in text


def test_close_names_are_suggested(repo):
    with pytest.raises(ParameterError, match=r"did you mean sleep_s"):
        check_parameters(notebook_parameters(repo / HERE), {"sleep": 1.0})


@pytest.mark.parametrize("name, value", [("a", 1.5), ("a", "3"), ("b", "fast"), ("name", 3),
                                         ("a", True)])
def test_wrong_type_names_parameter_value_and_kind(repo, name, value):
    with pytest.raises(ParameterError) as info:
        check_parameters(notebook_parameters(repo / HERE), {name: value})
    assert f"parameter {name!r} must be" in str(info.value)
    assert repr(value) in str(info.value)


def test_ints_are_widened_for_float_parameters(repo):
    checked = check_parameters(notebook_parameters(repo / HERE), {"b": 3, "a": 4})
    assert checked == {"b": 3.0, "a": 4}
    assert isinstance(checked["b"], float)


@pytest.mark.parametrize("text, value", [("3", 3), ("3.0", 3.0), ("1e-3", 1e-3), ("true", True),
                                         ("[1, 2]", [1, 2]), ("cuda", "cuda"), ("'7'", "7")])
def test_command_line_values_are_yaml(text, value):
    parsed = parse_value(text)
    assert parsed == value and type(parsed) is type(value)
