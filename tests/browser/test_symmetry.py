"""The SymmetryDashboard in a real browser: in JupyterLab (the heatmaps render; training
runs in the background and its traces update while a second cell executes; the orbit
slider moves the points and reaches the kernel) and as the Panel app of
``labkit serve symmetry``."""

from __future__ import annotations

import pytest

from tests.browser.conftest import labkit_app, nonblank

ROOT = ".jp-OutputArea .lk-symmetry"

_SECOND_CELL = """import time
seen = []
for _ in range(12):
    seen.append(dash.step)
    time.sleep(0.15)
print("second cell done:", dash.status, len(set(seen)), "distinct steps")"""

# Append a code cell holding `source` to the open notebook and execute it; resolves at once.
_RUN_NEW_CELL = """async (source) => {
  const app = window.jupyterapp;
  const notebook = app.shell.currentWidget.content;
  notebook.activeCellIndex = notebook.widgets.length - 1;
  await app.commands.execute('notebook:insert-cell-below');
  notebook.activeCell.model.sharedModel.setSource(source);
  app.commands.execute('notebook:run-cell');
  return notebook.widgets.length - 1;
}"""


def _data(page, attr: str) -> str | None:
    """``el.dataset[attr]`` of the dashboard (``attr`` in camelCase)."""
    kebab = "".join(f"-{c.lower()}" if c.isupper() else c for c in attr)
    return page.locator(ROOT).get_attribute(f"data-{kebab}")


def _wait_attr(page, attr: str, predicate: str, timeout_ms: int = 60_000) -> None:
    page.wait_for_function(
        f"() => {{ const el = document.querySelector('{ROOT}');"
        f" if (!el) return false; const v = el.dataset['{attr}']; return {predicate}; }}",
        timeout=timeout_ms)


def test_dashboard_trains_in_the_background_and_the_orbit_slider_reaches_the_kernel(lab, page):
    lab.open("browser/symmetry.ipynb")
    lab.run_all(timeout_s=180)
    root = page.locator(ROOT)
    root.wait_for(timeout=60_000)
    # Heatmaps: one learned 2 x 2 generator beside the so(2) ground truth.
    _wait_attr(page, "heatmapCells", "Number(v) === 8")
    heat = root.locator(".lk-heatmaps")
    assert root.locator(".lk-heat").count() == 2
    assert nonblank(heat.screenshot())
    assert root.locator(".lk-heat .lk-badge").first.inner_text().startswith("cos ")
    assert _data(page, "status") == "idle" and _data(page, "step") == "0"
    _wait_attr(page, "orbitPoints", "Number(v) === 48")

    # Start from the browser: Python trains on a background thread.
    root.locator("button.lk-start").click()
    _wait_attr(page, "status", "v === 'running'")
    assert lab.wait_for_kernel_value("dash.running", True) is True
    _wait_attr(page, "step", "Number(v) > 0")

    # A second cell executes to the end while training goes on, and the traces keep
    # updating in the page meanwhile.
    step_before = int(_data(page, "step"))
    index = page.evaluate(_RUN_NEW_CELL, _SECOND_CELL)
    output = page.locator(".jp-Notebook:visible .jp-Cell").nth(index).locator(".jp-OutputArea-output")
    page.wait_for_function(
        "(i) => { const c = window.jupyterapp.shell.currentWidget.content.widgets[i];"
        " return c && c.model.executionCount !== null; }", arg=index, timeout=60_000)
    text = output.inner_text(timeout=30_000)
    assert "second cell done: running" in text  # it finished while training ran
    assert int(text.split("running")[1].split()[0]) >= 2  # the kernel saw the steps advance
    step_after = int(_data(page, "step"))
    assert step_after > step_before  # the DOM's step counter moved
    _wait_attr(page, "traces", "Number(v) > 2")  # cosine evaluations drawn
    assert int(_data(page, "health")) > 10
    assert nonblank(root.locator("canvas.lk-traces").screenshot())
    assert nonblank(root.locator("canvas.lk-health").screenshot())

    # Stop from the browser.
    root.locator("button.lk-start").click()
    _wait_attr(page, "status", "v === 'stopped'")
    assert lab.wait_for_kernel_value("dash.status", "stopped") == "stopped"
    steps_done = lab.kernel_eval("dash.step")
    assert steps_done >= step_after and lab.kernel_eval("len(dash.history)") == steps_done

    # The orbit slider moves the points along exp(tL)x, and t reaches the kernel.
    first_before = _data(page, "orbitFirst")
    cx_before = root.locator("circle.lk-orbit-point").first.get_attribute("cx")
    orbit = root.locator("svg.lk-orbit")
    shot_before = orbit.screenshot()
    assert nonblank(shot_before)
    slider = root.locator("input.lk-orbit-t")
    slider.focus()
    page.keyboard.press("End")
    t_end = float(slider.input_value())  # the last value on the slider's step grid
    assert t_end == pytest.approx(float(slider.get_attribute("max")), abs=0.02)
    _wait_attr(page, "orbitT", f"Math.abs(Number(v) - {t_end}) < 1e-9")
    assert _data(page, "orbitFirst") != first_before
    assert root.locator("circle.lk-orbit-point").first.get_attribute("cx") != cx_before
    assert orbit.screenshot() != shot_before
    assert lab.wait_for_kernel_value("round(dash.orbit_t, 6)", round(t_end, 6)) \
        == pytest.approx(t_end)
    # The browser's point is the kernel's exp(t L) x, up to the browser's linear
    # interpolation between grid values of t (chord error <= |x| dt^2 / 8 on a circle).
    x, y = map(float, _data(page, "orbitFirst").split(","))
    px, py, dt, r = lab.kernel_eval(
        "tuple(float(v) for v in dash.orbit_points_at()[0, :2]) + "
        "(dash.orbit['ts'][1] - dash.orbit['ts'][0], float(abs(dash.orbit_sample()[0]).max()))")
    tol = 2 * r * dt**2 / 8 + 1e-4
    assert (x, y) == (pytest.approx(px, abs=tol), pytest.approx(py, abs=tol))

    # Python -> browser: t set in the kernel moves the slider.
    lab.kernel_eval("setattr(dash, 'orbit_t', 0.5) or 1")
    _wait_attr(page, "orbitT", "Math.abs(Number(v) - 0.5) < 1e-6")
    assert float(slider.input_value()) == pytest.approx(0.5, abs=float(slider.get_attribute("step")))
    assert page.console.real_errors() == []


@pytest.fixture
def symmetry_app_url():
    with labkit_app("symmetry") as url:
        yield url


_FIND = ("const find = (n) => n.querySelector('.lk-symmetry') || [...n.querySelectorAll('*')]"
         ".map(e => e.shadowRoot && find(e.shadowRoot)).find(Boolean);")


def test_panel_app_renders_in_chromium_and_start_reaches_python(symmetry_app_url, page):
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(symmetry_app_url, timeout=120_000)
    root = page.locator(".lk-symmetry")  # Playwright locators pierce Panel's shadow DOM
    root.wait_for(timeout=90_000)
    page.wait_for_function(
        f"() => {{ {_FIND} const el = find(document);"
        " return el && Number(el.dataset.heatmapCells) === 8 && Number(el.dataset.orbitPoints) > 0; }",
        timeout=90_000)
    assert nonblank(root.locator(".lk-heatmaps").screenshot())
    assert nonblank(root.locator("svg.lk-orbit").screenshot())
    root.locator("button.lk-start").click()
    # Python trains (the default run stops early once the score is sustained).
    page.wait_for_function(
        f"() => {{ {_FIND} const el = find(document);"
        " return el && Number(el.dataset.step) > 0 && Number(el.dataset.traces) > 0; }",
        timeout=90_000)
    page.wait_for_function(
        f"() => {{ {_FIND} const el = find(document);"
        " return el && ['finished', 'stopped'].includes(el.dataset.status); }",
        timeout=120_000)
    if root.get_attribute("data-status") == "finished":
        assert root.get_attribute("data-verdict") != ""
    assert nonblank(root.locator("canvas.lk-traces").screenshot())
    assert page.console.real_errors() == []
    external = [u for u in requested if not u.startswith(("http://127.0.0.1", "data:", "blob:"))]
    assert external == []  # nothing fetched from a CDN
