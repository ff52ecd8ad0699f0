"""report.html in Chromium from file://, with every network request refused: the header
shows, code stays folded until asked for, figures draw, and nothing logs an error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest

from labkit.reports import run_notebook

SOURCE = [
    ("markdown", "# Sine report\n\nA figure and a recorded value."),
    ("code", "n = 50  # points [>= 2]"),
    ("code", "import numpy as np\nimport plotly.graph_objects as go\n\n"
             "from labkit.reports import record"),
    ("code", "x = np.linspace(0.0, 6.0, n)\n"
             "go.Figure(go.Scatter(x=x, y=np.sin(x)), layout={'height': 320}).show()\n"
             "record('peak', float(np.sin(x).max()))"),
]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of a small notebook with one plotly figure, run with ``n`` changed."""
    base = tmp_path_factory.mktemp("report")
    cells = [nbformat.v4.new_markdown_cell(s) if kind == "markdown" else
             nbformat.v4.new_code_cell(s) for kind, s in SOURCE]
    cells[1].metadata["tags"] = ["parameters"]
    notebook = base / "src" / "sine.ipynb"
    notebook.parent.mkdir()
    kernel = {"kernelspec": {"name": "python3", "display_name": "Python 3",
                             "language": "python"}, "language_info": {"name": "python"}}
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata=kernel), notebook)
    return run_notebook(notebook, {"n": 40}, out_dir=base / "run").report


def _offline(page: Any) -> list[str]:
    """Refuse every request that leaves the file system; returns the list of those."""
    refused: list[str] = []

    def route(r: Any) -> None:
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            refused.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return refused


def test_report_header_folded_code_and_figure_offline(page, report):
    refused = _offline(page)
    page.goto(report.as_uri())
    header = page.locator("header.lk-header")
    assert header.is_visible()
    assert page.locator("header h1").inner_text() == "Sine report"
    assert page.locator("header .lk-badge").inner_text() == "completed"
    changed = page.locator("header tr.lk-changed")
    assert changed.count() == 1 and changed.locator("td").first.inner_text() == "n"
    assert "peak" in header.inner_text()

    code = page.locator("details.lk-code .highlight")
    assert code.count() == 3
    assert all(not code.nth(i).is_visible() for i in range(3))
    page.locator("details.lk-code summary").nth(2).click()  # one cell
    assert code.nth(2).is_visible() and not code.nth(0).is_visible()
    toggle = page.locator("#lk-code-toggle")
    toggle.click()  # all cells
    assert all(code.nth(i).is_visible() for i in range(3))
    assert toggle.inner_text() == "hide all code"
    toggle.click()
    assert all(not code.nth(i).is_visible() for i in range(3))

    page.wait_for_function("() => document.body.dataset.figures === 'drawn'", timeout=60_000)
    figure = page.locator(".lk-figure")
    assert figure.count() == 1 and figure.locator(".main-svg").count() >= 1
    assert figure.locator(".scatterlayer .trace").count() == 1
    assert 300 <= figure.bounding_box()["height"] <= 340
    assert refused == []
    assert page.console.real_errors() == []
