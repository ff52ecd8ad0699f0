"""The AttractorViewer in series mode (truth beside a model) in JupyterLab: it renders, shows
its readout, hides the catalogue controls, and the colour mode and a series toggle reach
the kernel."""

from __future__ import annotations

import pytest

from tests.browser.conftest import nonblank, open_page


@pytest.fixture
def page(browser, request):
    with open_page(browser, request.node.name,
                   before_close="() => { window.requestAnimationFrame = () => 0; }") as pg:
        yield pg


def _wait_attr(page, root: str, attr: str, predicate: str, timeout_ms: int = 60_000) -> None:
    page.wait_for_function(
        f"() => {{ const el = document.querySelector('{root}');"
        f" if (!el) return false; const v = el.dataset['{attr}']; return {predicate}; }}",
        timeout=timeout_ms)


def test_series_viewer_renders_with_readout_and_controls_reach_the_kernel(lab, page):
    lab.open("browser/reconstruction.ipynb")
    lab.run_all(timeout_s=180)
    root = ".jp-OutputArea .lk-attractor"
    canvas = page.locator(f"{root} canvas.lk-canvas")
    canvas.wait_for(timeout=60_000)
    _wait_attr(page, root, "mode", "v === 'series'")
    _wait_attr(page, root, "drawn", "Number(v) > 0")
    metrics = page.locator(f"{root} .lk-metrics")
    assert metrics.inner_text().startswith("D_stsp 0.41 (floor 0.23)")
    assert not page.locator(f"{root} select.lk-system").is_visible()  # catalogue hidden
    assert not page.locator(f"{root} .lk-params").is_visible()
    assert page.locator(f"{root} input[data-series]").count() == 2

    page.locator(f"{root} button.lk-play").click()
    assert lab.wait_for_kernel_value("viewer.playing", False) is False
    page.wait_for_timeout(300)
    assert nonblank(canvas.screenshot())

    # Colour by the symbolic code: the browser's choice reaches Python, which repacks.
    version = int(page.locator(root).get_attribute("data-version"))
    page.locator(f"{root} select.lk-colour").select_option("codes")
    assert lab.wait_for_kernel_value("viewer.color_by", "codes") == "codes"
    _wait_attr(page, root, "version", f"Number(v) > {version}")
    assert page.locator(f"{root} .lk-key").count() >= 4  # codes 0..3 (+ "no code: truth")

    # Hide the truth with its check box.
    page.locator(f"{root} input[data-series='truth']").uncheck()
    assert lab.wait_for_kernel_value("viewer.hidden", ["truth"]) == ["truth"]
    assert lab.kernel_eval("sorted(set(viewer.data.series_of.tolist()))") == [1]

    # Python -> browser: a new readout is shown.
    lab.kernel_eval("setattr(viewer, 'readout', 'D_stsp 0.30 · D_H 0.05') or 1")
    _wait_attr(page, root, "readout", "v === 'D_stsp 0.30 · D_H 0.05'")
    assert page.console.real_errors() == []
