"""The CrystalViewer in a real browser: in JupyterLab (renders a trajectory beside the
ground truth, hover labels, the frame slider and play reach the kernel, Python moves the
slider), and the static plotly figures in an offline HTML page (no network)."""

from __future__ import annotations

import re

import numpy as np
import plotly.io as pio

from labkit.atoms.io import sample_crystals
from labkit.widgets import as_crystal, crystal_grid_figure, crystal_trajectory_figure
from tests.browser.conftest import nonblank

ROOT = ".jp-OutputArea .lk-crystal"


def _data(page, attr: str) -> str | None:
    kebab = "".join(f"-{c.lower()}" if c.isupper() else c for c in attr)
    return page.locator(ROOT).get_attribute(f"data-{kebab}")


def _wait_attr(page, attr: str, predicate: str, timeout_ms: int = 60_000) -> None:
    page.wait_for_function(
        f"() => {{ const el = document.querySelector('{ROOT}');"
        f" if (!el) return false; const v = el.dataset['{attr}']; return {predicate}; }}",
        timeout=timeout_ms)


def test_viewer_renders_a_trajectory_and_the_player_reaches_the_kernel(lab, page):
    lab.open("browser/crystal.ipynb")
    lab.run_all(timeout_s=180)
    root = page.locator(ROOT)
    canvas = root.locator("canvas.lk-canvas")
    canvas.wait_for(timeout=60_000)
    _wait_attr(page, "version", "v !== undefined && Number(v) >= 1")
    _wait_attr(page, "drawn", "Number(v) > 0")  # WebGL drew atoms
    # Expected elements: player controls, two panel titles, an element legend.
    assert root.locator("button.lk-play").is_visible()
    frame_slider = root.locator("input.lk-frame")
    assert frame_slider.get_attribute("max") == "11"
    assert _data(page, "nFrames") == "12" and _data(page, "panels") == "2"
    assert root.locator(".lk-title").all_inner_texts() == ["generated: VIrO3",
                                                          "ground truth: VIrO3"]
    assert sorted(root.locator(".lk-legend-item").all_inner_texts()) == ["Ir", "O", "V"]
    for box in ("lk-bonds", "lk-cell", "lk-images"):
        assert root.locator(f".{box} input").is_checked()
    page.wait_for_timeout(300)
    before = canvas.screenshot()
    assert nonblank(before)

    # Hover the front-most atom of the first panel: a label with element, index, coordinates.
    x, y = map(float, _data(page, "probe").split(","))
    canvas.hover(position={"x": x, "y": y})
    _wait_attr(page, "hover", "v && v.length > 0", timeout_ms=10_000)
    tip = root.locator(".lk-tooltip")
    assert tip.is_visible()
    assert re.fullmatch(r"(V|Ir|O) \d \(-?\d\.\d{3}, -?\d\.\d{3}, -?\d\.\d{3}\)",
                        tip.inner_text())

    # Browser -> Python: move the frame slider to the end (a real input event).
    frame_slider.focus()
    page.keyboard.press("End")
    assert lab.wait_for_kernel_value("viewer.frame", 11) == 11
    _wait_attr(page, "frame", "v === '11'")
    page.wait_for_timeout(300)
    after = canvas.screenshot()
    assert nonblank(after) and after != before  # atoms and the cell moved
    assert root.locator(".lk-frame-readout").inner_text() == "frame 11 / 11"

    # Press play: the browser advances frames and the kernel sees them change.
    root.locator("button.lk-play").click()
    assert lab.wait_for_kernel_value("viewer.playing", True) is True
    seen = {lab.kernel_eval("viewer.frame")}
    for _ in range(40):
        seen.add(lab.kernel_eval("viewer.frame"))
        if len(seen) >= 3:
            break
        page.wait_for_timeout(150)
    assert len(seen) >= 3, seen
    root.locator("button.lk-play").click()
    assert lab.wait_for_kernel_value("viewer.playing", False) is False

    # Python -> browser: a frame set in the kernel moves the slider.
    lab.kernel_eval("setattr(viewer, 'frame', 4) or 1")
    _wait_attr(page, "frame", "v === '4'")
    assert frame_slider.input_value() == "4"
    # A setting that rebuilds the scenes: 2x2x2 cells show 8 times the atoms (and more).
    drawn = int(_data(page, "drawn"))
    root.locator("select.lk-repeat").select_option("2,2,2")
    assert lab.wait_for_kernel_value("viewer.repeat", [2, 2, 2]) == [2, 2, 2]
    _wait_attr(page, "drawn", f"Number(v) > {drawn}")
    assert page.console.real_errors() == []


def test_static_crystal_figures_render_offline(page, tmp_path):
    """The report path: plotly figures with plotly.js inlined, opened from file:// with
    every network request refused; the 3-D scenes draw (WebGL) and are not blank."""
    crystals = sample_crystals("perov_5")[:4]
    truth = as_crystal(crystals[0])
    frames = np.stack([truth.frac + 0.02 * t for t in range(4)])
    lattices = np.stack([(1.3 - 0.1 * t) * truth.lattice for t in range(4)])
    anim = crystal_trajectory_figure({"species": truth.species, "frac": frames,
                                      "lattice": lattices})
    grid = crystal_grid_figure(crystals, metrics=[{"match": True, "rmse": 0.03}] * 4, cols=2)
    html = ("<html><head><meta charset='utf-8'></head><body>"
            + pio.to_html(anim, include_plotlyjs=True, full_html=False)
            + pio.to_html(grid, include_plotlyjs=False, full_html=False) + "</body></html>")
    path = tmp_path / "crystals.html"
    path.write_text(html)

    requested: list[str] = []

    def only_local(route):
        requested.append(route.request.url)
        if route.request.url.startswith(("file:", "data:", "blob:")):
            route.continue_()
        else:
            route.abort()

    page.route("**/*", only_local)
    page.goto(path.as_uri())
    plots = page.locator(".js-plotly-plot")
    plots.first.wait_for(timeout=30_000)
    assert plots.count() == 2
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot canvas').length >= 2",
                           timeout=30_000)
    for i in range(2):
        plots.nth(i).scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        assert plots.nth(i).locator("canvas").count() >= 1  # gl scenes
        assert nonblank(plots.nth(i).screenshot())
    assert page.locator(".js-plotly-plot .slider-container").count() == 1  # the player
    assert page.locator(".js-plotly-plot .updatemenu-button").count() == 2  # play, pause
    captions = page.locator(".js-plotly-plot .annotation-text").all_text_contents()
    assert sum("rmse=0.03" in c for c in captions) == 4
    assert [u for u in requested if not u.startswith(("file:", "data:", "blob:"))] == []
    assert page.console.real_errors() == []
