"""Every notebook under notebooks/ runs with its small defaults (papermill, via labkit.reports),
has a parameters cell, is committed without outputs and imports only public labkit names."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import nbformat
import pytest

from labkit.reports import notebook_parameters, run_notebook

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (REPO / "notebooks").rglob("*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts)
IDS = [str(p.relative_to(REPO / "notebooks")) for p in NOTEBOOKS]


def test_there_are_notebooks():
    assert NOTEBOOKS and (REPO / "notebooks" / "00_tour.ipynb") in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_has_parameters_and_no_outputs(path):
    assert notebook_parameters(path)  # raises if the tagged cell is missing or not literal
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"cell {i} has outputs"


def _labkit_imports(source: str) -> list[tuple[str, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("labkit"):
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(a.name, "") for a in node.names if a.name.startswith("labkit")]
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_imports_only_public_labkit_names(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for module, name in _labkit_imports(cell.source):
            assert not any(part.startswith("_") for part in module.split(".")), module
            if name:
                public = getattr(importlib.import_module(module), "__all__", [])
                assert name in public, f"{module}.{name} is not in {module}.__all__"


def test_a_private_import_would_be_caught():
    assert _labkit_imports("from labkit.core.integrate import _rk4_step") == [
        ("labkit.core.integrate", "_rk4_step")]


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_runs_with_small_defaults(path, tmp_path):
    result = run_notebook(path, out_dir=tmp_path / path.stem, timeout=300)
    assert result.status == "completed"
    assert result.report.stat().st_size > 0
