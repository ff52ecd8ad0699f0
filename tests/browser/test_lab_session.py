"""A real JupyterLab session (issue 16's acceptance): notebooks 00, 01, 02 and 03 open in one
lab, each run with its small defaults; then every labkit view in all four is non-blank, and
the arrow keys move a labkit slider, the kernel sees it, and the notebook's selection stays.
(The acceptance's "no console errors" does not hold yet: see the end of the test.)"""

from __future__ import annotations

import pytest

from tests.browser.conftest import _STATE_JS, launch_chromium, nonblank, open_page

NOTEBOOKS = ["notebooks/00_tour.ipynb", "notebooks/dynamics/01_attractor_zoo.ipynb",
             "notebooks/symmetry/02_symmetry_discovery.ipynb",
             "notebooks/atoms/03_crystal_diffusion.ipynb"]
VIEWS = ".jp-OutputArea .lk-widget"


@pytest.fixture(scope="module")
def browser(playwright_instance):
    with launch_chromium(playwright_instance) as chromium:
        yield chromium


@pytest.fixture
def page(browser, request):
    with open_page(browser, request.node.name,
                   before_close="() => { window.requestAnimationFrame = () => 0; }") as pg:
        yield pg


def _activate(page, path: str) -> None:
    """Open (or bring forward) ``path`` and wait until its kernel is idle."""
    page.evaluate("async (p) => { await window.jupyterapp.commands.execute('docmanager:open',"
                  " {path: p}); return true; }", path)
    page.wait_for_function(
        "(p) => { const w = window.jupyterapp.shell.currentWidget;"
        " return w && w.context && w.context.path === p && w.isVisible; }", arg=path,
        timeout=60_000)
    page.wait_for_function(
        f"() => {{ const s = ({_STATE_JS})(); return s && s.status === 'idle'; }}",
        timeout=180_000)


@pytest.mark.slow  # four notebooks run in one lab: ~6-8 min on 2 cores
def test_four_notebooks_in_one_lab_all_views_draw_and_keys_reach_python(lab, page):
    lab.open(NOTEBOOKS[0])
    for path in NOTEBOOKS:
        _activate(page, path)
        lab.run_all(timeout_s=600)
    blank: list[str] = []
    views: dict[str, int] = {}
    for path in NOTEBOOKS:
        _activate(page, path)
        panel = page.evaluate("() => window.jupyterapp.shell.currentWidget.id")
        found = page.locator(f"[id='{panel}'] {VIEWS}").all()
        views[path] = len(found)
        for view in found:
            view.scroll_into_view_if_needed()
            page.wait_for_timeout(1500)  # a view given a context back draws its next frame
            if not nonblank(view.screenshot()):
                blank.append(f"{path}: {view.get_attribute('class')}")
    # 01 has the live AttractorViewer, 03 the live CrystalViewer (00 and 02 report static
    # figures); every view found is a picture.
    assert views[NOTEBOOKS[1]] >= 1 and views[NOTEBOOKS[3]] >= 1, views
    assert not blank, blank

    # Arrow keys move a labkit slider (01's live viewer), and the kernel sees the new value.
    _activate(page, NOTEBOOKS[1])
    panel = page.evaluate("() => window.jupyterapp.shell.currentWidget.id")
    slider = page.locator(f"[id='{panel}'] .jp-OutputArea .lk-attractor input[data-name='n_ic']").first
    slider.scroll_into_view_if_needed()
    before = lab.kernel_eval("viewer.n_ic")
    slider.focus()  # focusing the output selects its cell, as a click does
    active = page.evaluate("() => window.jupyterapp.shell.currentWidget.content.activeCellIndex")
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    page.wait_for_timeout(2000)
    assert lab.kernel_eval("viewer.n_ic") > before
    assert page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.content.activeCellIndex") == active
    # Not asserted yet (issue 16 stays open for it): the page logs uncaught errors from
    # plotly figures in the tabs that are hidden ("Failed to execute 'createImageData' ...
    # The source width is zero", "Cannot read properties of null (reading 'removeChild')").
