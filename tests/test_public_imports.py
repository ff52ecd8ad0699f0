"""Public names are imported from their package, never through a private module.

Checked in the tests, the benches, the docstring examples of labkit and across labkit's
own packages; the widgets layer takes nothing at all from a domain's private modules (the
domains export what it needs). Private names (helpers, constants under test) may still be
imported from their private module by the tests of that module.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOMAINS = ("labkit.dynamics", "labkit.symmetry", "labkit.atoms")


def _imports(source: str) -> list[tuple[int, str, str]]:
    """``(line, module, name)`` of every ``from labkit... import name``."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("labkit"):
            out += [(node.lineno, node.module or "", a.name) for a in node.names]
    return out


def _public_home(module: str) -> str | None:
    """The package whose ``__all__`` a name of the private ``module`` should come from: the
    module's path up to its first private part; None for a public module."""
    parts = module.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_"):
            return ".".join(parts[:i])
    return None


_ALL: dict[str, set[str]] = {}


def _public_names(package: str) -> set[str]:
    if package not in _ALL:
        _ALL[package] = set(getattr(importlib.import_module(package), "__all__", ()))
    return _ALL[package]


def _top_package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _docstring_examples(path: Path) -> str:
    lines = [m.group(1) for m in re.finditer(r"^\s*>>> (from labkit[^\n]*)$", path.read_text(),
                                               re.MULTILINE)]
    return "\n".join(line for line in lines if "(" not in line or ")" in line)


def _violations() -> list[str]:
    found = []
    files = [*sorted((REPO / "tests").rglob("*.py")), *sorted((REPO / "bench").rglob("*.py"))]
    for path in files:
        for line, module, name in _imports(path.read_text()):
            home = _public_home(module)
            if home and name in _public_names(home):
                found.append(f"{path.relative_to(REPO)}:{line}: {name} from {module} "
                             f"(public in {home})")
    for path in sorted((REPO / "labkit").rglob("*.py")):
        rel = path.relative_to(REPO)
        owner = ".".join(rel.with_suffix("").parts)
        for _line, module, name in _imports(_docstring_examples(path)):
            home = _public_home(module)
            if home and name in _public_names(home):
                found.append(f"{rel}: docstring example takes {name} from {module} "
                             f"(public in {home})")
        for line, module, name in _imports(path.read_text()):
            home = _public_home(module)
            if not home or _top_package(module) == _top_package(owner):
                continue
            if owner.startswith("labkit.widgets") and module.startswith(DOMAINS):
                found.append(f"{rel}:{line}: the widgets layer takes {name} from the private "
                             f"{module}")
            elif name in _public_names(home):
                found.append(f"{rel}:{line}: {name} from {module} (public in {home})")
    return found


def test_public_names_come_from_their_package():
    found = _violations()
    assert not found, f"{len(found)} imports through private modules:\n" + "\n".join(found)


@pytest.mark.parametrize(("module", "home"), [
    ("labkit.dynamics.catalogue._catalogue", "labkit.dynamics.catalogue"),
    ("labkit.symmetry._liegan", "labkit.symmetry"),
    ("labkit.core.train", None),
])
def test_the_public_home_of_a_module(module, home):
    assert _public_home(module) == home


def test_a_violation_would_be_caught():
    imports = _imports("from labkit.symmetry._liegan import liegan\n")
    (line, module, name), = imports
    assert _public_home(module) == "labkit.symmetry" and name in _public_names("labkit.symmetry")
