"""The harness itself: a notebook renders in JupyterLab and an interaction reaches the
kernel; a `labkit run` report renders from file:// with the network cut off."""

from __future__ import annotations

from pathlib import Path

import pytest

from labkit.reports import run_notebook
from tests.browser.conftest import nonblank

REPO = Path(__file__).resolve().parents[2]


def test_plotly_figure_and_slider_render_and_the_slider_reaches_the_kernel(lab, page):
    lab.open("browser/slider.ipynb")
    lab.run_all()
    plot = page.locator(".jp-OutputArea .js-plotly-plot")
    plot.wait_for(timeout=30_000)
    assert page.locator(".jp-OutputArea .js-plotly-plot .scatterlayer .trace").count() == 1
    assert nonblank(plot.screenshot())
    handle = lab.widget_outputs(".noUi-handle")
    handle.wait_for(timeout=30_000)
    assert lab.kernel_eval("seen['value']") == 3
    handle.focus()
    for _ in range(4):
        page.keyboard.press("ArrowRight")
    assert lab.wait_for_kernel_value("slider.value", 7) == 7
    assert lab.kernel_eval("seen['value']") == 7  # the observer ran in the kernel
    assert page.console.real_errors() == []


@pytest.fixture(scope="module")
def tour_report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tour")
    return run_notebook(REPO / "notebooks" / "00_tour.ipynb", out_dir=out).report


def test_report_renders_offline_from_file_url(tour_report, page):
    requested: list[str] = []

    def only_local(route):
        requested.append(route.request.url)
        if route.request.url.startswith(("file:", "data:", "blob:")):
            route.continue_()
        else:
            route.abort()

    page.route("**/*", only_local)
    page.goto(tour_report.as_uri())
    plots = page.locator(".js-plotly-plot")
    plots.first.wait_for(timeout=30_000)
    assert plots.count() >= 2
    for i in range(plots.count()):
        plots.nth(i).scroll_into_view_if_needed()
        assert plots.nth(i).locator(".main-svg").count() >= 1
        assert nonblank(plots.nth(i).screenshot())
    assert page.locator("canvas").count() >= 1  # the 3D scene is drawn with WebGL
    assert [u for u in requested if not u.startswith(("file:", "data:", "blob:"))] == []
    assert page.console.real_errors() == []
