"""Keys in labkit's widgets, in the real JupyterLab: a slider clicked and moved with the
arrow keys reaches the kernel, and no key pressed inside a labkit widget triggers a notebook
shortcut (the active cell stays, no cell is collapsed or selected, the notebook stays in
command mode). JupyterLab takes its shortcuts from keydown events that bubble to the
document; labkit's widgets stop them at their root (widgets/common.js, keepKeys)."""

from __future__ import annotations

import pytest

from tests.browser.conftest import launch_chromium, open_page

CRYSTAL = ".jp-OutputArea .lk-crystal"
ATTRACTOR = ".jp-OutputArea .lk-attractor"

_NOTEBOOK = """() => {
  const nb = window.jupyterapp.shell.currentWidget.content;
  return { active: nb.activeCellIndex, mode: nb.mode,
           selected: nb.widgets.filter((c) => nb.isSelected(c)).length,
           focused: document.activeElement && document.activeElement.className };
}"""


@pytest.fixture(scope="module")
def browser(playwright_instance):
    """A Chromium of this module's own, as in test_attractor.py."""
    with launch_chromium(playwright_instance) as chromium:
        yield chromium


@pytest.fixture
def page(browser, request):
    with open_page(browser, request.node.name,
                   before_close="() => { window.requestAnimationFrame = () => 0; }") as pg:
        yield pg


def _press(page, slider, keys: list[str]) -> dict:
    """Click ``slider`` on its thumb (a mouse user's way in), then press ``keys``; returns the
    notebook's state seen after the click."""
    box = slider.bounding_box()
    assert box is not None
    slider.click(position={"x": 6, "y": box["height"] / 2})  # the thumb sits at the start
    page.wait_for_function("(el) => document.activeElement === el", arg=slider.element_handle(),
                           timeout=10_000)
    state = page.evaluate(_NOTEBOOK)
    for key in keys:
        page.keyboard.press(key)
        page.wait_for_timeout(150)
    return state


def test_arrows_move_labkit_sliders_and_trigger_no_notebook_shortcut(lab, page):
    lab.open("browser/keyboard.ipynb")
    lab.run_all(timeout_s=180)
    page.locator(f"{CRYSTAL} input.lk-frame").wait_for(timeout=60_000)
    page.locator(f"{ATTRACTOR} input[data-name='tail']").wait_for(timeout=60_000)
    assert lab.kernel_eval("crystal.frame") == 0

    # The crystal's frame slider: right and up each move one frame, in the kernel too.
    frame = page.locator(f"{CRYSTAL} input.lk-frame")
    before = _press(page, frame, ["ArrowRight", "ArrowUp"])
    assert lab.wait_for_kernel_value("crystal.frame", 2) == 2
    after = page.evaluate(_NOTEBOOK)
    assert after == before, (before, after)  # same active cell, mode, selection, focus
    assert before["mode"] == "command" and before["active"] == 2  # the crystal's cell
    # The space group and cell line follows the frame.
    assert page.locator(f"{CRYSTAL} .lk-title-info").inner_text() \
        == lab.kernel_eval("crystal.frame_info[2]['text']")
    page.keyboard.press("ArrowLeft")
    assert lab.wait_for_kernel_value("crystal.frame", 1) == 1
    page.keyboard.press("ArrowDown")
    assert lab.wait_for_kernel_value("crystal.frame", 0) == 0
    assert page.evaluate(_NOTEBOOK) == before

    # The attractor's tail slider (made by common.js's slider()): the same.
    slider = page.locator(f"{ATTRACTOR} input[data-name='tail']")
    before = _press(page, slider, [])
    start = int(slider.input_value())
    for key in ("ArrowRight", "ArrowUp"):
        page.keyboard.press(key)
        page.wait_for_timeout(150)
    assert lab.wait_for_kernel_value("viewer.tail", start + 2) == start + 2
    assert page.evaluate(_NOTEBOOK) == before
    assert before["active"] == 3  # the attractor's cell

    # Keys on a focused labkit button or checkbox are the widget's too: no cell moves, no
    # heading collapses, no cell is added ("b") or cut ("x").
    for target in (page.locator(f"{CRYSTAL} button.lk-play"),
                   page.locator(f"{CRYSTAL} .lk-bonds input")):
        target.focus()
        before = page.evaluate(_NOTEBOOK)
        cells = lab.state()["counts"]
        for key in ("ArrowDown", "ArrowUp", "ArrowLeft", "b", "x"):
            page.keyboard.press(key)
        page.wait_for_timeout(300)
        assert page.evaluate(_NOTEBOOK) == before
        assert lab.state()["counts"] == cells
    assert page.console.real_errors() == []
