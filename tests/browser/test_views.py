"""Several labkit views at once in JupyterLab: two views of one AttractorViewer, a
CrystalViewer and a SymmetryDashboard in one output, every widget's ES module built from
the shared ``widgets/common.js``. All draw; the attractor's two views share one model and
one ring of samples (a pause in one pauses both, a system set in Python reaches both, both
hold the same samples), and their trajectory sliders end at Python's limit."""

from __future__ import annotations

import pytest

from labkit.widgets._attractor_data import MAX_IC
from tests.browser.conftest import launch_chromium, open_page

ATTRACTORS = ".jp-OutputArea .lk-attractor"


@pytest.fixture(scope="module")
def browser(playwright_instance):
    """A Chromium of this module's own, as in test_attractor.py: animated software WebGL
    keeps its GPU process busy."""
    with launch_chromium(playwright_instance) as chromium:
        yield chromium


@pytest.fixture
def page(browser, request):
    with open_page(browser, request.node.name,
                   before_close="() => { window.requestAnimationFrame = () => 0; }") as pg:
        yield pg


def _all_views(page, selector: str, count: int, predicate: str, timeout_ms: int = 90_000) -> None:
    """Wait until ``count`` elements match ``selector`` and ``predicate`` (of ``d``, an
    element's dataset) holds for each."""
    page.wait_for_function(
        f"() => {{ const all = [...document.querySelectorAll('{selector}')];"
        f" return all.length === {count} && all.every((el) => {{ const d = el.dataset;"
        f" return {predicate}; }}); }}", timeout=timeout_ms)


def _datasets(page, selector: str, key: str) -> list[str | None]:
    return page.evaluate(f"() => [...document.querySelectorAll('{selector}')]"
                         f".map((el) => el.dataset['{key}'])")


def test_several_views_at_once_all_draw_and_views_of_one_widget_share_it(lab, page):
    lab.open("browser/views.ipynb")
    lab.run_all(timeout_s=240)
    _all_views(page, ATTRACTORS, 2, "Number(d.version) >= 1 && Number(d.drawn) > 0")
    _all_views(page, ".jp-OutputArea .lk-crystal", 1, "Number(d.drawn) > 0")
    _all_views(page, ".jp-OutputArea .lk-symmetry", 1, "Number(d.heatmapCells) > 0")

    # Both trajectory sliders end at the limit Python checks n_ic against.
    sliders = page.locator(f"{ATTRACTORS} input[data-name='n_ic']")
    assert sliders.count() == 2
    assert [int(s.get_attribute("max")) for s in sliders.all()] == [MAX_IC, MAX_IC]
    assert lab.kernel_eval("viewer.max_ic") == MAX_IC

    # One model: a pause in the first view pauses the second; one ring: the same samples.
    page.locator(ATTRACTORS).first.locator("button.lk-play").click()
    assert lab.wait_for_kernel_value("viewer.playing", False) is False
    _all_views(page, ATTRACTORS, 2, "d.playing === 'false' && d.complete === 'true'")
    version = lab.kernel_eval("viewer.version")
    _all_views(page, ATTRACTORS, 2, f"Number(d.version) === {version}")
    samples = _datasets(page, ATTRACTORS, "samples")
    assert samples[0] == samples[1] and int(samples[0]) > 0

    # Python -> both views.
    lab.kernel_eval("setattr(viewer, 'system', 'Rossler') or 1")
    _all_views(page, ATTRACTORS, 2, "d.system === 'Rossler' && Number(d.drawn) > 0")
    assert page.console.real_errors() == []
