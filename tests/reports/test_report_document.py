"""report.html as a document: header, folded code, recorded values, figures, offline."""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from labkit.reports import _html, read_run, run_notebook
from labkit.reports._html import external_references, notebook_to_html
from labkit.reports._record import PARAMETERS_MIME, RECORD_MIME

NOTEBOOKS = Path(__file__).parent / "notebooks"
#: A parameter value full of HTML: it must reach the page as text.
NASTY = '<b>x&y</b>"'


def _labkit(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("labkit")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=300,
                          env=os.environ | {"PYTHONUNBUFFERED": "1"})


@pytest.fixture(scope="module")
def square(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``labkit run`` of square.ipynb with two parameters changed, one set to its
    default; the run folder and what the command printed."""
    out = tmp_path_factory.mktemp("square") / "run"
    proc = _labkit("run", str(NOTEBOOKS / "square.ipynb"), "-p", "a", "3", "-p", "b", "0.5",
                   "-p", "name", NASTY, "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    return out, proc.stdout


@pytest.fixture(scope="module")
def fails(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fails") / "run"
    result = run_notebook(NOTEBOOKS / "fails.ipynb", {"level": 7}, out_dir=out,
                          raise_on_failure=False)
    assert result.status == "failed"
    return out


def _header(html: str) -> str:
    return html[html.index('<header class="lk-header">'):html.index("</header>")]


def _body(html: str) -> str:
    return html[html.index('<main class="lk-cells">'):html.index("</main>")]


def _row(html: str, name: str) -> str:
    """The table row of ``name`` in the header."""
    match = re.search(rf'<tr[^>]*><td class="lk-mono">{re.escape(name)}</td>.*?</tr>',
                      _header(html), re.S)
    assert match, f"no row for {name!r}"
    return match.group(0)


def _cell(html: str, anchor: str) -> str:
    start = html.index(f'id="{anchor}"')
    return html[html.rindex("<div", 0, start):html.index('<div class="jp-Cell ', start)]


def test_header_shows_title_status_commit_dates_device_and_versions(square):
    out, _ = square
    info, html = read_run(out), (out / "report.html").read_text()
    header = _header(html)
    assert "<title>square</title>" in html and "<h1>square</h1>" in header  # no # heading
    assert '<p class="lk-status lk-completed"><span class="lk-badge">completed</span>' in header
    assert info["git"]["commit"][:12] in header
    assert ("uncommitted changes" in header) == bool(info["git"]["dirty"])
    assert _html._when(info["started"]) in header and _html._when(info["finished"]) in header
    assert info["started"].startswith(_html._when(info["started"])[:10])
    assert f"<dd>{_html._duration(info['duration_s'])}</dd>" in header
    assert _html._device(info["device"]) in header
    assert f"labkit {info['labkit_version']}" in header


def test_run_json_and_the_command_give_the_report_size(square):
    out, stdout = square
    size = (out / "report.html").stat().st_size
    assert read_run(out)["report_bytes"] == size
    assert f"{out / 'report.html'} ({size / 1e6:.2f} MB)" in stdout


def test_changed_parameters_are_highlighted_with_their_default(square):
    html = (square[0] / "report.html").read_text()
    a = _row(html, "a")
    assert 'class="lk-changed"' in a and "3</span>" in a and "(default " in a and ">2</span>" in a
    assert "an int" in a  # the comment of the parameters cell describes it
    b = _row(html, "b")  # set on the command line, but to its default
    assert "lk-changed" not in b and "(default" not in b
    assert "lk-changed" not in _row(html, "sleep_s")
    assert "(2 changed from the default, highlighted)" in _header(html)


def test_header_values_are_escaped(square):
    html = (square[0] / "report.html").read_text()
    assert NASTY not in html and "<b>x" not in html
    assert "&lt;b&gt;x&amp;y&lt;/b&gt;" in _row(html, "name")  # as text
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A <i>title</i> & more")])
    run = {"status": "failed", "error": {"cell_index": None, "ename": "Boom<script>",
                                         "evalue": "<img src=x onerror=alert(1)>",
                                         "traceback": "<tb>"}}
    page = notebook_to_html(nb, run=run)
    assert "<h1>A &lt;i&gt;title&lt;/i&gt; &amp; more</h1>" in page
    assert "<title>A &lt;i&gt;title&lt;/i&gt; &amp; more</title>" in page
    assert "Boom&lt;script&gt;: &lt;img src=x onerror=alert(1)&gt;" in page
    assert "<img src=x" not in page and "<tb>" not in page and "&lt;tb&gt;" in page


def test_title_is_the_first_markdown_heading_shown_once():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_markdown_cell("# Lorenz tour\n\nSome words."),
        nbformat.v4.new_markdown_cell("# Second heading")])
    html = notebook_to_html(nb, title="fallback")
    assert "<h1>Lorenz tour</h1>" in _header(html) and "fallback" not in html
    assert "Lorenz tour" not in _body(html) and "Some words." in _body(html)
    assert "Second heading" in _body(html)
    untitled = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("## Not a title")])
    assert "<h1>fallback</h1>" in notebook_to_html(untitled, title="fallback")


def test_code_is_folded_and_the_added_cells_stay_out_of_the_body(square):
    html = (square[0] / "report.html").read_text()
    executed = nbformat.read(square[0] / "square.ipynb", as_version=4)
    body = _body(html)
    folded = re.findall(r'<details class="lk-code">\s*<summary>[^<]*</summary>.*?</details>',
                        body, re.S)
    assert len(folded) == body.count('class="highlight') == 3  # parameters, imports, records
    assert "<details class=\"lk-code\" open" not in body
    assert 'id="lk-code-toggle"' in _header(html) and ">show all code</button>" in html
    added = [c for c in executed.cells
             if {"injected-parameters", "labkit-parameters"} & set(c.metadata.get("tags", []))]
    assert len(added) == 2
    assert "_labkit_rp" not in html and "injected" not in body
    injected = next(c for c in added if "injected-parameters" in c.metadata.tags)
    assert '<details class="lk-added">' in _header(html)
    assert '<pre># Parameters\na = 3\nb = 0.5\nname = "&lt;b&gt;x&amp;y' in _header(html)
    assert "a = 3" in injected.source


def test_recorded_values_are_a_table_not_text_lines(square):
    html = (square[0] / "report.html").read_text()
    assert "recorded " not in html and "parameters: {" not in html
    assert RECORD_MIME not in html and PARAMETERS_MIME not in html
    header = _header(html)
    assert "<h2>Recorded values</h2>" in header
    assert re.search(r'square</td><td><span class="lk-mono">9.5</span></td>'
                     r'<td class="lk-mono">scalar</td>', header)
    assert re.search(r'vector</td><td><span class="lk-mono">\[0, 3, 6\]</span></td>'
                     r'<td class="lk-mono">3</td>', header)
    assert "'3-0.5'" in _row(html, "label")


def test_the_report_loads_nothing_from_the_network(square, fails):
    for run in (square[0], fails):
        html = (run / "report.html").read_text()
        assert external_references(html) == []
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)


def test_the_report_of_a_failing_run_shows_the_failing_cell(fails):
    html = (fails / "report.html").read_text()
    info = read_run(fails)
    executed = nbformat.read(fails / "fails.ipynb", as_version=4)
    failing = executed.cells[info["error"]["cell_index"]]
    anchor = f"cell-id={failing.id}"
    header = _header(html)
    assert '<p class="lk-status lk-failed"><span class="lk-badge">failed</span>' in header
    assert f'at <a href="#{anchor}">In [{failing.execution_count}]</a>:' in header
    assert "ValueError: boom 7" in header
    cell = _cell(html, anchor)
    assert "celltag_labkit-failed" in cell and '<details class="lk-code" open' in cell
    assert "raise</span> <span" in cell and "boom 7</pre>" in cell  # its code and traceback
    assert '<summary>[not run] record("after", 2.0)</summary>' in _body(html)
    assert "An Exception was encountered" not in html  # papermill's banners are left out
    assert re.search(r"before</td><td>.*?1.0", header)


def test_the_header_shows_the_final_status(tmp_path, monkeypatch):
    """A run whose kernel received other values is failed after the notebook ran; the
    report, written once the status is final, says so."""
    import labkit.reports._run as run_module

    monkeypatch.setattr(run_module, "read_parameters",
                        lambda nb: {"a": 5, "b": 0.5, "sleep_s": 0.0, "name": "x"})
    result = run_notebook(NOTEBOOKS / "square.ipynb", out_dir=tmp_path / "r",
                          raise_on_failure=False)
    assert result.status == "failed" and result.error["ename"] == "ParameterMismatch"
    header = _header(result.report.read_text())
    assert '<span class="lk-badge">failed</span>' in header and "ParameterMismatch" in header


def _figure_output(figure: dict) -> dict:
    return nbformat.v4.new_output("display_data", data={
        "application/vnd.plotly.v1+json": figure, "text/html": "<div>figure as HTML</div>"})


def _typed(values: np.ndarray) -> dict:
    return {"dtype": "f8", "bdata": base64.b64encode(values.astype("<f8").tobytes()).decode()}


def _figures(html: str) -> list[dict]:
    blobs = re.findall(rf'<script type="{re.escape(_html.FIGURE_TYPE)}">([^<]*)</script>', html)
    return [json.loads(gzip.decompress(base64.b64decode(b))) for b in blobs]


def test_figures_carry_plotlyjs_once_and_compressed_coordinates():
    t = np.linspace(0.0, 25.0, 5001)
    y = np.sin(t) * 40.0
    stamps = 1.7e9 + t  # seconds since 1970: float32 would move them by up to 64 s
    big = 2.0**24 + 1.0  # integers from here on are not all float32 numbers
    loader = nbformat.v4.new_output("display_data", data={
        "text/html": "<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>"
                     "<script>/** plotly.js v9 */ window.Plotly = {};</script>"})
    figure = {"data": [{"type": "scatter", "x": _typed(t), "y": _typed(y)},
                       {"type": "scatter", "x": _typed(stamps), "y": _typed(big + np.arange(7.0)),
                        "z": _typed(np.arange(7.0)), "customdata": _typed(y[:7])}],
              "layout": {"height": 300, "title": {"text": "two"}}}
    cell = nbformat.v4.new_code_cell("fig.show()", outputs=[loader, _figure_output(figure)])
    second = nbformat.v4.new_code_cell("fig.show()", outputs=[_figure_output(figure)])
    html = notebook_to_html(nbformat.v4.new_notebook(cells=[cell, second]))
    assert html.count('id="lk-plotlyjs"') == html.count(_html.PLOTLYJS_TYPE) == 1
    assert "plotly.js v" not in html and "figure as HTML" not in html  # JSON drawn, not HTML
    assert 'style="height:300px"' in html and external_references(html) == []
    drawn = _figures(html)
    assert len(drawn) == 2 and drawn[0]["layout"] == figure["layout"]
    first, other = drawn[0]["data"]
    assert first["x"]["dtype"] == first["y"]["dtype"] == "f4"
    back = np.frombuffer(base64.b64decode(first["y"]["bdata"]), "<f4").astype(float)
    assert np.abs(back - y).max() <= _html.FLOAT32_TOLERANCE * np.ptp(y)
    assert other["x"] == figure["data"][1]["x"]  # far from zero: kept float64
    assert other["y"] == figure["data"][1]["y"]  # integers that float32 would change
    assert other["z"]["dtype"] == "f4"  # small integers: float32 holds them exactly
    assert np.array_equal(np.frombuffer(base64.b64decode(other["z"]["bdata"]), "<f4"),
                          np.arange(7.0))
    assert other["customdata"] == figure["data"][1]["customdata"]  # shown raw on hover
    plotlyjs = re.search(r'id="lk-plotlyjs"[^>]*>([^<]*)<', html)
    assert plotlyjs and b"plotly.js v" in gzip.decompress(base64.b64decode(plotlyjs.group(1)))


def test_float32_is_used_only_where_values_stay_put():
    assert _html._as_float32(np.array([0.1, 2.5, -17.25])) is not None
    assert _html._as_float32(np.array([1.0, 2.0**24 + 1.0])) is None  # an integer would move
    assert _html._as_float32(np.array([1.0, 3.0, 2.0**20])) is not None  # exact in float32
    assert _html._as_float32(np.array([1e300, 1.0])) is None  # beyond float32's range
    kept = _html._as_float32(np.array([np.nan, np.inf, 0.5]))
    assert kept is not None and np.isnan(kept[0]) and np.isinf(kept[1])
    assert _html._as_float32(np.array([5.0, 5.0])) is not None  # constant and exact
    assert _html._as_float32(np.array([0.1, 0.1])) is None  # constant but would move


def test_a_report_without_a_run_still_has_parameters_and_records():
    params = nbformat.v4.new_code_cell("a = 2  # an int", metadata={"tags": ["parameters"]})
    check = nbformat.v4.new_code_cell("_labkit_rp({'a': a})",
                                      metadata={"tags": ["labkit-parameters"]}, outputs=[
        nbformat.v4.new_output("display_data", data={PARAMETERS_MIME: '{"a": 4}',
                                                     "text/plain": "parameters: {'a': 4}"})])
    rec = nbformat.v4.new_code_cell('record("r", [[1.5, 2.0]])', outputs=[
        nbformat.v4.new_output("display_data", data={
            RECORD_MIME: '{"name": "r", "value": [[1.5, 2.0]], "shape": [1, 2]}',
            "text/plain": "recorded r = [[1.5, 2.0]]"})])
    html = notebook_to_html(nbformat.v4.new_notebook(cells=[params, check, rec]), title="t")
    assert ">4</span>" in _row(html, "a") and "lk-status" not in _header(html)
    assert re.search(r'r</td><td><span class="lk-mono">\[\[1.5, 2.0\]\]</span></td>'
                     r'<td class="lk-mono">1 x 2</td>', _header(html))
    assert "recorded r" not in html and "parameters: {" not in html


def test_live_widgets_fall_back_to_their_text():
    view = nbformat.v4.new_output("display_data", data={
        "application/vnd.jupyter.widget-view+json": {"model_id": "m1", "version_major": 2,
                                                     "version_minor": 0},
        "text/plain": "IntSlider(value=3)"})
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("w", outputs=[view])])
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
        "state": {"m1": {}}, "version_major": 2, "version_minor": 0}}
    html = notebook_to_html(nb)
    assert "IntSlider(value=3)</pre>" in _body(html) and "widget-view" not in html
