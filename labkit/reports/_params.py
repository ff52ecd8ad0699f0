"""The ``parameters`` cell of a notebook: read it, describe it, check values against it.

Everything here works on the notebook file alone, so a bad parameter is reported before
any kernel starts. A parameters cell holds plain assignments of literals, one per line,
optionally followed by a comment that documents the name and, in square brackets at
its end, the values the notebook accepts::

    n_members = 64  # trajectories in the ensemble [>= 1]
    dt = 0.005  # RK4 step [> 0, <= 0.1]
    device = "auto"  # where to run [one of "auto", "cpu", "cuda"]

A constraint is a comma-separated list of comparisons with a number (``>``, ``>=``, ``<``,
``<=``, ``!=``) or ``one of`` followed by literals; for a list parameter it applies to every
element. Bracketed text that starts with neither (``[s]``) is part of the help text.

Values given on the command line, in parameter files and in grid files are all read with
one rule, :func:`parse_yaml` (the YAML 1.2 core schema): ``yes`` and ``on`` stay strings,
``0755`` is the int 755 (``0o755`` is octal), ``1e-3`` is a float, dates stay strings.
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

__all__ = ["Parameter", "check_parameters", "notebook_digest", "notebook_parameters",
           "parse_value", "parse_yaml", "read_notebook"]

PARAMETERS_TAG = "parameters"
#: Tags of cells that a run adds (papermill's injected values, labkit's check of them);
#: they are removed from a source before it runs and left out of its digest.
GENERATED_TAGS = frozenset({"injected-parameters", "labkit-parameters"})
_CONSTRAINT = re.compile(r"\[\s*((?:>=|<=|!=|>|<|one of\b)[^\[\]]*)\]\s*$")
_COMPARISON = re.compile(r"^(>=|<=|!=|>|<)\s*(.+)$")


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
    constraint: str = ""

    def describe(self) -> str:
        """``name = default  (kind)  # help [constraint]`` on one line."""
        text = f"{self.name} = {self.default!r}  ({self.kind})"
        note = " ".join(t for t in (self.help, f"[{self.constraint}]" if self.constraint else "") if t)
        return f"{text}  # {note}" if note else text

    def violation(self, value: Any) -> str | None:
        """Why ``value`` breaks the declared constraint, or ``None`` when it keeps it."""
        if not self.constraint:
            return None
        check = _parse_constraint(self.constraint, self.name)
        items = value if isinstance(value, list | tuple) else [value]
        for item in items:
            if not check(item):
                where = f" (element {item!r})" if isinstance(value, list | tuple) else ""
                return f"parameter {self.name!r} must be {self.constraint}, got {value!r}{where}"
        return None


def _parse_constraint(text: str, name: str) -> Any:
    """A predicate for a constraint such as ``>= 1, <= 10`` or ``one of "a", "b"``."""
    if text.startswith("one of"):
        try:
            choices = ast.literal_eval("[" + text[len("one of"):] + "]")
        except (ValueError, SyntaxError) as exc:
            raise ParameterError(f"parameter {name!r}: the choices in [{text}] are not "
                                 "literals separated by commas") from exc
        return lambda v: any(_kind(v) == _kind(c) and v == c for c in choices)
    tests = []
    for clause in text.split(","):
        match = _COMPARISON.match(clause.strip())
        bound: Any = None
        if match:
            try:
                bound = ast.literal_eval(match.group(2).strip())
            except (ValueError, SyntaxError):
                bound = None
        if not match or not isinstance(bound, int | float) or isinstance(bound, bool):
            raise ParameterError(f"parameter {name!r}: constraint clause {clause.strip()!r} in "
                                 f"[{text}] is not a comparison with a number like '>= 1'")
        tests.append((match.group(1), bound))
    ops = {">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b,
           "<=": lambda a, b: a <= b, "!=": lambda a, b: a != b}

    def holds(value: Any) -> bool:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return False
        return all(ops[op](value, bound) for op, bound in tests)

    return holds


def _kind(value: Any) -> str:
    if value is None:
        return "none"
    for kind, types in (("bool", bool), ("int", int), ("float", float), ("str", str),
                        ("list", list | tuple), ("dict", dict)):
        if isinstance(value, types):
            return kind
    return type(value).__name__


def read_notebook(path: str | Path) -> Any:
    """The notebook at ``path`` (``nbformat`` v4), or a :class:`ConfigError` saying what is
    wrong with the file (missing, a folder, not JSON, not a notebook)."""
    import nbformat

    from labkit.errors import ConfigError

    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"notebook {str(path)!r} is a folder; expected a .ipynb file")
    if not path.is_file():
        raise ConfigError(f"notebook {str(path)!r} does not exist")
    if path.suffix != ".ipynb":
        raise ConfigError(f"expected a .ipynb notebook, got {str(path)!r}")
    try:
        nb = nbformat.read(str(path), as_version=4)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"notebook {str(path)!r} is not text (a binary file?): {exc}") from exc
    except Exception as exc:  # nbformat: NotJSONError, ValidationError, KeyError, ...
        raise ConfigError(f"notebook {str(path)!r} is not a Jupyter notebook: "
                          f"{type(exc).__name__}: {str(exc)[:200]}") from exc
    if not isinstance(nb.get("cells"), list):
        raise ConfigError(f"notebook {str(path)!r} is not a Jupyter notebook: it has no cells")
    return nb


def _tags(cell: Any) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def source_cells(nb: Any) -> list[Any]:
    """The cells of ``nb`` without those a run added (see :data:`GENERATED_TAGS`)."""
    return [c for c in nb.cells if not GENERATED_TAGS.intersection(_tags(c))]


def notebook_digest(notebook: str | Path | Any) -> str:
    """SHA-256 of a notebook's content: every cell's type, source and tags, in order.

    Outputs, execution counts, cell ids and other metadata are left out, and so are the
    cells a run adds, so the executed copy of a report has the digest of its source and
    any edit of code, markdown or a default gives a new digest.
    """
    import hashlib
    import json

    nb = read_notebook(notebook) if isinstance(notebook, str | Path) else notebook
    content = [[c.cell_type, c.source, sorted(_tags(c))] for c in source_cells(nb)]
    return hashlib.sha256(json.dumps(content, ensure_ascii=True).encode()).hexdigest()


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
    nb = read_notebook(notebook) if isinstance(notebook, str | Path) else notebook
    _, cell = parameters_cell(nb)
    source = cell.source
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ParameterError(f"the parameters cell is not valid Python: {exc}") from exc
    comments = _comments(source)
    params: dict[str, Parameter] = {}
    for node in tree.body:
        target: ast.expr | None = None
        value: ast.expr | None = None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign):
            target, value = node.target, node.value
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
        constraint = ""
        if match := _CONSTRAINT.search(help_text):
            constraint = match.group(1).strip()
            help_text = help_text[: match.start()].rstrip()
        param = Parameter(target.id, default, _kind(default), help_text, constraint)
        if constraint and (problem := param.violation(default)):
            raise ParameterError(f"the default breaks its own constraint: {problem}")
        params[target.id] = param
    return params


_CORE_LOADER: Any = None


def _core_loader() -> Any:
    """A PyYAML safe loader that resolves plain scalars by the YAML 1.2 core schema."""
    global _CORE_LOADER
    if _CORE_LOADER is not None:
        return _CORE_LOADER
    import yaml

    class CoreLoader(yaml.SafeLoader):
        pass

    CoreLoader.yaml_implicit_resolvers = {}
    resolvers = [
        ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
        ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
        ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$",
         list("-+0123456789")),
        ("tag:yaml.org,2002:float",
         r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
         r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", list("-+0123456789.")),
    ]
    for tag, pattern, first in resolvers:
        CoreLoader.add_implicit_resolver(tag, re.compile(pattern), first)

    def construct_int(loader: Any, node: Any) -> int:
        text = loader.construct_scalar(node)
        if text.startswith("0o"):
            return int(text[2:], 8)
        if text.startswith("0x"):
            return int(text[2:], 16)
        return int(text, 10)

    CoreLoader.add_constructor("tag:yaml.org,2002:int", construct_int)
    _CORE_LOADER = CoreLoader
    return CoreLoader


def parse_yaml(text: str, *, what: str = "value") -> Any:
    """``text`` read as YAML by the 1.2 core schema (the one typing rule of labkit's
    parameters: ``-p`` values, parameter files and grid files).

    Raises:
        ParameterError: text that is not valid YAML, naming ``what`` it is.
    """
    import yaml

    try:
        return yaml.load(text, Loader=_core_loader())
    except yaml.YAMLError as exc:
        raise ParameterError(f"{what} is not valid YAML: {exc}") from exc


def parse_value(text: str) -> Any:
    """A command-line value by :func:`parse_yaml`'s rule: ``3`` is an int, ``3.0`` and
    ``1e-3`` floats, ``[1, 2]`` a list, ``true`` a bool, ``yes`` and anything else that is
    not valid YAML a string."""
    try:
        return parse_yaml(text)
    except ParameterError:
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


def _plain_data(value: Any) -> bool:
    """Whether ``value`` is JSON-like data (what a parameters cell can hold)."""
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, list | tuple):
        return all(_plain_data(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_data(v) for k, v in value.items())
    return False


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
        if not _fits(value, param.kind) or not _plain_data(value):
            hint = " (quote it to make it a string)" if param.kind == "str" else ""
            problems.append(
                f"parameter {name!r} must be {param.kind} like its default {param.default!r}, "
                f"got {value!r} ({_kind(value)}){hint}"
            )
            continue
        value = float(value) if param.kind == "float" else value
        if (problem := param.violation(value)) is not None:
            problems.append(problem)
            continue
        checked[name] = value
    if problems:
        raise ParameterError(
            f"{notebook}: " + "; ".join(problems)
            + f"\nvalid parameters of {notebook}:\n{_listing(params)}"
        )
    return checked
