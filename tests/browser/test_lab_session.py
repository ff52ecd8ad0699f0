"""A real JupyterLab session (issue 16's acceptance): notebooks 00, 01, 02 and 03 open in one
lab, each run with its small defaults; then every labkit view in all four is non-blank
with no console errors (among them more WebGL views than Chromium gives one page contexts),
and the arrow keys move a labkit slider and the kernel sees it."""

from __future__ import annotations

import pytest

from tests.browser.conftest import launch_chromium, nonblank, open_page

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
    page.evaluate("(p) => window.jupyterapp.commands.execute('docmanager:open', {path: p})", path)
    page.wait_for_function(
        "(p) => { const w = window.jupyterapp.shell.currentWidget;"
        " return w && w.context && w.context.path === p && w.isVisible; }", arg=path,
        timeout=60_000)


@pytest.mark.slow  # four notebooks run in one lab: ~6-8 min on 2 cores
def test_four_notebooks_in_one_lab_all_views_draw_and_keys_reach_python(lab, page):
    lab.open(NOTEBOOKS[0])
    for path in NOTEBOOKS:
        _activate(page, path)
        lab.run_all(timeout_s=600)
    blank, views = [], 0
    for path in NOTEBOOKS:
        _activate(page, path)
        for view in page.locator(VIEWS).all():
            view.scroll_into_view_if_needed()
            page.wait_for_timeout(1500)  # a view given a context back draws its next frame
            views += 1
            if not nonblank(view.screenshot()):
                blank.append(f"{path}: {view.get_attribute('class')}")
    assert views >= 4 and not blank, blank
    assert not page.console.real_errors(), page.console.real_errors()[:5]

    # Arrow keys move a labkit slider (01's live viewer), and the kernel sees the new value.
    _activate(page, NOTEBOOKS[1])
    slider = page.locator(".jp-OutputArea .lk-attractor input[data-name='n_ic']").first
    slider.scroll_into_view_if_needed()
    before = lab.kernel_eval("viewer.n_ic")
    active = page.evaluate("() => window.jupyterapp.shell.currentWidget.content.activeCellIndex")
    slider.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    page.wait_for_timeout(2000)
    assert lab.kernel_eval("viewer.n_ic") > before
    assert page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.content.activeCellIndex") == active
