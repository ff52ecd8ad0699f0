"""The ``parameters`` cell of a notebook: read it, describe it, check values against it.

Everything here works on the notebook file alone, so a bad parameter is reported before
any kernel starts. A parameters cell holds plain assignments of literals, one per line,
optionally followed by a comment that documents the name::

    n_members = 64  # trajectories in the ensemble
    device = "auto"  # "auto", "cpu" or "cuda"
"""

from __future__ import annotations

import ast
import dataclasses
import io
import re
import tokenize
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from labkit.errors import ParameterError

__all__ = ["Parameter", "check_parameters", "notebook_parameters", "parse_value"]

PARAMETERS_TAG = "parameters"
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One name of a notebook's ``parameters`` cell.

    Attributes:
        name: the variable name.
        default: its literal default value.
        kind: ``"int"``, ``"float"``, ``"bool"``, ``"str"``, ``"list"``, ``"dict"`` or
            ``"none"`` (a ``None`` default accepts any value).
        help: the comment after the assignment, if any.
    """

    name: str
    default: Any
    kind: str
    help: str = ""

    def describe(self) -> str:
        """``name = default  (kind)  # help`` on one line."""
        text = f"{self.name} = {self.default!r}  ({self.kind})"
        return f"{text}  # {self.help}" if self.help else text


def _kind(value: Any) -> str:
    if value is None:
        return "none"
    for kind, types in (("bool", bool), ("int", int), ("float", float), ("str", str),
                        ("list", list | tuple), ("dict", dict)):
        if isinstance(value, types):
            return kind
    return type(value).__name__


def parameters_cell(nb: Any) -> tuple[int, Any]:
    """Index and cell of the first code cell tagged ``parameters``.

    Raises:
        ParameterError: when the notebook has no such cell.
    """
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and PARAMETERS_TAG in cell.get("metadata", {}).get("tags", []):
            return index, cell
    raise ParameterError("the notebook has no code cell tagged 'parameters'")


def _comments(source: str) -> dict[int, str]:
    """Line number -> text of the comment on that line."""
    found: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            found[tok.start[0]] = tok.string.lstrip("#").strip()
    return found


def notebook_parameters(notebook: str | Path | Any) -> dict[str, Parameter]:
    """The parameters of a notebook (a path or an ``nbformat`` notebook), in cell order.

    Raises:
        ParameterError: no ``parameters`` cell, or a statement in it that is not an
            assignment of a literal to a single name.
    """
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4) if isinstance(notebook, str | Path) else notebook
    _, cell = parameters_cell(nb)
    source = cell.source
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ParameterError(f"the parameters cell is not valid Python: {exc}") from exc
    comments = _comments(source)
    params: dict[str, Parameter] = {}
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else (
            node.target if isinstance(node, ast.AnnAssign) else None)
        value = node.value
        if not isinstance(target, ast.Name) or value is None:
            raise ParameterError(
                f"line {node.lineno} of the parameters cell is not 'name = literal': "
                f"{ast.get_source_segment(source, node)!r}"
            )
        try:
            default = ast.literal_eval(value)
        except ValueError as exc:
            raise ParameterError(
                f"the default of parameter {target.id!r} is not a literal: "
                f"{ast.get_source_segment(source, value)!r}"
            ) from exc
        help_text = comments.get(node.end_lineno or node.lineno, "")
        params[target.id] = Parameter(target.id, default, _kind(default), help_text)
    return params


def parse_value(text: str) -> Any:
    """A command-line value as YAML: ``3`` is an int, ``3.0`` a float, ``[1, 2]`` a list,
    ``true`` a bool, anything else a string; ``1e-3`` is a float too."""
    import yaml

    if _NUMBER.fullmatch(text.strip()):  # YAML 1.1 would read 1e-3 as a string
        return float(text)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _fits(value: Any, kind: str) -> bool:
    if kind == "none":
        return True
    if kind == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "list":
        return isinstance(value, list | tuple)
    return _kind(value) == kind


def _listing(params: Mapping[str, Parameter]) -> str:
    return "\n".join(f"  {p.describe()}" for p in params.values())


def check_parameters(
    params: Mapping[str, Parameter], values: Mapping[str, Any], *, notebook: str = "the notebook"
) -> dict[str, Any]:
    """Check ``values`` against ``params``; return them with ints widened where floats are due.

    Raises:
        ParameterError: naming every unknown name or ill-typed value, and listing the
            valid parameters with their defaults.
    """
    problems = []
    checked: dict[str, Any] = {}
    for name, value in values.items():
        if name not in params:
            import difflib

            close = difflib.get_close_matches(name, list(params), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            problems.append(f"unknown parameter {name!r}{hint}")
            continue
        param = params[name]
        if not _fits(value, param.kind):
            problems.append(
                f"parameter {name!r} must be {param.kind} like its default {param.default!r}, "
                f"got {value!r} ({_kind(value)})"
            )
            continue
        checked[name] = float(value) if param.kind == "float" else value
    if problems:
        raise ParameterError(
            f"{notebook}: " + "; ".join(problems)
            + f"\nvalid parameters of {notebook}:\n{_listing(params)}"
        )
    return checked
