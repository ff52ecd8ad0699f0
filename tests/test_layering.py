"""The layering rules of STYLE.md, checked by importing each layer in a fresh interpreter."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

UI = ("plotly", "ipywidgets", "anywidget", "nglview", "panel")
DOMAINS = ("labkit.dynamics", "labkit.symmetry", "labkit.atoms")


def loaded_after(module: str) -> set[str]:
    code = f"import sys, json, {module}; print(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    return set(json.loads(proc.stdout.splitlines()[-1]))


def _present(modules: set[str], roots: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in roots or m in roots
                  or any(m.startswith(r + ".") for r in roots))


def test_import_labkit_is_cheap():
    mods = loaded_after("labkit")
    heavy = ("torch", "numpy", "scipy", "xarray", "dask", "papermill", *UI)
    assert _present(mods, heavy) == []
    assert not any(m.startswith(DOMAINS) or m.startswith("labkit.widgets") for m in mods)


def test_core_imports_no_domain_and_no_ui():
    mods = loaded_after("labkit.core; import labkit.core.integrate, labkit.core.cache")
    assert _present(mods, UI) == []
    assert _present(mods, DOMAINS + ("labkit.widgets", "labkit.reports")) == []


EXISTING = [d for d in DOMAINS if importlib.util.find_spec(d) is not None]


def test_the_dynamics_domain_exists():
    assert "labkit.dynamics" in EXISTING


@pytest.mark.parametrize("domain", EXISTING)
def test_domains_import_no_ui_and_no_other_domain(domain):
    mods = loaded_after(domain)
    assert _present(mods, UI) == []
    allowed = {"labkit.atoms": ("labkit.symmetry",)}.get(domain, ())
    others = [d for d in DOMAINS if d != domain and d not in allowed]
    assert _present(mods, tuple(others) + ("labkit.widgets", "labkit.reports")) == []
    assert _present(mods, ("pymatgen", "ase")) == []


def test_reports_import_is_cheap_for_notebooks():
    mods = loaded_after("labkit.reports")
    assert _present(mods, ("torch", "papermill", "dask", "distributed", *UI)) == []
    assert _present(mods, DOMAINS + ("labkit.widgets",)) == []
