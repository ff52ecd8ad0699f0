"""labkit's WebGL views within Chromium's budget of WebGL contexts, in JupyterLab.

Chromium keeps about 16 live WebGL contexts on a page and drops the oldest past that
("Too many active WebGL contexts"). One notebook shows 20 labkit WebGL views (18
CrystalViewers, a catalogue AttractorViewer and one of given series): all of them share
one context on the page and one in the attractor's drawing worker (widgets/common.js,
SharedGL), so every view draws, the page makes at most two WebGL canvases (one of them the
throwaway probe for software rendering), and no warning or error appears. A context lost
through WEBGL_lose_context is announced in each view and recovered: the views draw again.
The "PNG" buttons download the pictures of a CrystalViewer and an AttractorViewer.
"""

from __future__ import annotations

import io
import time

import pytest

from tests.browser.conftest import ARTIFACTS, Lab, launch_chromium, open_page

CRYSTALS = ".jp-OutputArea .lk-crystal"
ATTRACTORS = ".jp-OutputArea .lk-attractor"
VIEWS = f"{CRYSTALS}, {ATTRACTORS}"
N_CRYSTALS, N_ATTRACTORS = 18, 2  # as in notebooks/webgl_budget.ipynb

#: Counts the canvases that got a WebGL context on the page's main thread.
_COUNT_WEBGL = """() => {
  window.__webglCanvases = 0;
  const getContext = HTMLCanvasElement.prototype.getContext;
  HTMLCanvasElement.prototype.getContext = function (type, ...rest) {
    const ctx = getContext.call(this, type, ...rest);
    if (ctx && /webgl/.test(type) && !this.__labkitCounted) {
      this.__labkitCounted = true;
      window.__webglCanvases += 1;
    }
    return ctx;
  };
}"""

#: Distinct colours and the share of pixels unlike the top-left one in view i's canvas,
#: read back through a 2-D canvas.
_PIXELS = """([selector, i]) => {
  const view = document.querySelectorAll(selector)[i];
  const canvas = view.querySelector('canvas.lk-canvas');
  const probe = document.createElement('canvas');
  probe.width = canvas.width; probe.height = canvas.height;
  const ctx = probe.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(canvas, 0, 0);
  const data = ctx.getImageData(0, 0, probe.width, probe.height).data;
  const colours = new Set();
  let other = 0;
  for (let k = 0; k < data.length; k += 4) {
    colours.add((data[k] << 16) | (data[k + 1] << 8) | data[k + 2]);
    if (Math.abs(data[k] - data[0]) + Math.abs(data[k + 1] - data[1]) + Math.abs(data[k + 2] - data[2]) > 30) other++;
  }
  return { colours: colours.size, other: other / (data.length / 4), width: canvas.width };
}"""


@pytest.fixture(scope="module")
def budget(playwright_instance, lab_server):
    """One page with the notebook run (its own Chromium, as in test_views.py: the tests of
    this module share the page in order); yields (lab, page, warnings seen)."""
    with launch_chromium(playwright_instance) as chromium, \
            open_page(chromium, "test_webgl_budget",
                      before_close="() => { window.requestAnimationFrame = () => 0; }") as page:
        warnings: list[str] = []
        page.on("console", lambda m: warnings.append(m.text) if m.type == "warning" else None)
        page.add_init_script(f"({_COUNT_WEBGL})()")
        lab = Lab(page, lab_server)
        started = time.monotonic()
        lab.open("browser/webgl_budget.ipynb")
        lab.run_all(timeout_s=300)
        try:
            page.wait_for_function(
                f"() => {{ const c = [...document.querySelectorAll('{CRYSTALS}')],"
                f" a = [...document.querySelectorAll('{ATTRACTORS}')];"
                f" return c.length === {N_CRYSTALS} && a.length === {N_ATTRACTORS}"
                " && [...c, ...a].every((el) => Number(el.dataset.drawn) > 0); }",
                timeout=180_000)
        except Exception as exc:
            seen = page.evaluate(f"() => [...document.querySelectorAll({VIEWS!r})].map((el) =>"
                                 " [el.className, el.dataset.drawn, el.dataset.version])")
            page.screenshot(path=str(ARTIFACTS / "test_webgl_budget-timeout.png"))
            raise AssertionError(f"not every view drew: {seen}; errors "
                                 f"{page.console.real_errors()}") from exc
        print(f"webgl budget: notebook run and {N_CRYSTALS + N_ATTRACTORS} views drawn in "
              f"{time.monotonic() - started:.1f} s")
        yield lab, page, warnings
        lab.shutdown_kernel()


def _pixels(page, i: int) -> dict:
    return page.evaluate(_PIXELS, [VIEWS, i])


def _assert_picture(page, i: int, timeout_s: float = 10) -> None:
    """View i's canvas holds a picture (several colours, not one fill). A playing attractor
    passes through nearly empty frames as its comets' tails run out before they loop, so
    its canvas is read again for a while."""
    deadline = time.monotonic() + timeout_s
    while True:
        seen = _pixels(page, i)
        if seen["colours"] >= 8 and seen["other"] > 0.002:
            return
        assert time.monotonic() < deadline, (i, seen)
        page.wait_for_timeout(200)


def _too_many(warnings: list[str]) -> list[str]:
    return [w for w in warnings if "Too many active WebGL contexts" in w]


def test_more_views_than_chromium_keeps_contexts_all_draw_with_two_contexts(budget):
    lab, page, warnings = budget
    views = page.locator(VIEWS)
    assert views.count() == N_CRYSTALS + N_ATTRACTORS
    for i in range(views.count()):
        views.nth(i).locator("canvas.lk-canvas").scroll_into_view_if_needed()
        _assert_picture(page, i)
    # 20 views, two WebGL canvases on the page: the shared context and the probe for software
    # rendering (released at once); the attractors draw in one worker context.
    assert page.evaluate("() => window.__webglCanvases") <= 2
    assert page.evaluate("() => globalThis.__labkitGLContexts.size") == 2
    assert _too_many(warnings) == []
    assert [w for w in warnings if "CONTEXT_LOST" in w] == []  # no context was lost
    assert page.locator(".jp-OutputArea .lk-gl-notice:visible").count() == 0
    # Each crystal shows its space group and cell (the kernel's frame_info) and its whole
    # element legend, inside the view.
    first = page.locator(CRYSTALS).first
    first.scroll_into_view_if_needed()
    assert first.locator(".lk-title-info").all_inner_texts() == [
        lab.kernel_eval("crystals[0].frame_info[0]['text']")]
    root = first.bounding_box()
    for item in first.locator(".lk-legend-item").all():
        box = item.bounding_box()
        assert root["x"] <= box["x"] and box["x"] + box["width"] <= root["x"] + root["width"]
    assert page.console.real_errors() == []


def test_a_lost_context_is_announced_and_the_views_draw_again(budget):
    lab, page, warnings = budget
    frames = (f"() => [...document.querySelectorAll({VIEWS!r})]"
              ".map((el) => Number(el.querySelector('canvas.lk-canvas').dataset.glFrames || 0))")
    before = page.evaluate(frames)
    page.evaluate("() => { for (const c of globalThis.__labkitGLContexts) c.lose(); }")
    # Every view says so, in a visible line, and keeps its last picture meanwhile.
    page.wait_for_function(
        f"() => [...document.querySelectorAll({VIEWS!r})].every((el) => {{"
        " const line = el.querySelector(':scope > .lk-gl-notice');"
        " return line && line.dataset.lost && line.offsetHeight > 0; })", timeout=30_000)
    assert "WebGL context lost" in page.locator(VIEWS).first.locator(".lk-gl-notice").inner_text()
    assert _pixels(page, 0)["colours"] >= 8
    page.evaluate("() => { for (const c of globalThis.__labkitGLContexts) c.restore(); }")
    page.wait_for_function(
        f"() => [...document.querySelectorAll({VIEWS!r})].every((el) => {{"
        " const line = el.querySelector(':scope > .lk-gl-notice');"
        " return line && !line.dataset.lost && line.offsetHeight === 0; })", timeout=30_000)
    page.wait_for_function(f"(before) => ({frames})().every((n, i) => n > before[i])",
                           arg=before, timeout=60_000)  # each view drew again
    for i in (0, N_CRYSTALS - 1, N_CRYSTALS, N_CRYSTALS + 1):
        page.locator(VIEWS).nth(i).scroll_into_view_if_needed()
        _assert_picture(page, i)  # the attractors' samples went to the GPU again
    assert _too_many(warnings) == []
    assert page.console.real_errors() == []


@pytest.mark.parametrize("selector", [CRYSTALS, ATTRACTORS])
def test_the_png_button_downloads_the_picture(budget, selector):
    from PIL import Image

    lab, page, warnings = budget
    view = page.locator(selector).first
    button = view.locator("button.lk-png")
    button.scroll_into_view_if_needed()
    with page.expect_download(timeout=30_000) as info:
        button.click()
    download = info.value
    data = open(download.path(), "rb").read()
    assert download.suggested_filename.endswith(".png")
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(data)).convert("RGB")
    canvas = view.locator("canvas.lk-canvas")
    assert image.size == tuple(page.evaluate(
        "(c) => [c.width, c.height]", canvas.element_handle()))
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is None or len(colours) >= 8  # the picture, not an empty canvas
    assert page.console.real_errors() == []
