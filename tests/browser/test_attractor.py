"""The AttractorViewer in a real browser: in JupyterLab (renders, a slider reaches the
kernel and the trajectories go on with the new value, the restart button draws initial
conditions again) and as the Panel app of ``labkit serve attractors``."""

from __future__ import annotations

import io
import time

import pytest

from tests.browser.conftest import labkit_app, launch_chromium, nonblank, open_page


@pytest.fixture(scope="module")
def browser(playwright_instance):
    """A Chromium of this module's own: software WebGL animating thousands of comets keeps
    its GPU process busy, and the other browser tests must not queue behind it."""
    with launch_chromium(playwright_instance) as chromium:
        yield chromium


@pytest.fixture
def page(browser, request):
    # Stop every animation before the closing screenshot and the close.
    with open_page(browser, request.node.name,
                   before_close="() => { window.requestAnimationFrame = () => 0; }") as pg:
        yield pg


def _pixels_changed(a: bytes, b: bytes) -> float:
    """Fraction of pixels that differ between two same-size screenshots."""
    from PIL import Image, ImageChops

    ia = Image.open(io.BytesIO(a)).convert("RGB")
    ib = Image.open(io.BytesIO(b)).convert("RGB")
    assert ia.size == ib.size
    diff = ImageChops.difference(ia, ib).convert("L").point(lambda v: 255 if v > 16 else 0)
    return sum(diff.histogram()[255:]) / (ia.size[0] * ia.size[1])


def _wait_attr(page, root: str, attr: str, predicate: str, timeout_ms: int = 60_000) -> None:
    page.wait_for_function(
        f"() => {{ const el = document.querySelector('{root}');"
        f" if (!el) return false; const v = el.dataset['{attr}']; return {predicate}; }}",
        timeout=timeout_ms)


def test_viewer_renders_in_jupyterlab_and_a_parameter_slider_reaches_the_kernel(lab, page):
    lab.open("browser/attractor.ipynb")
    lab.run_all(timeout_s=180)
    root = ".jp-OutputArea .lk-attractor"
    canvas = page.locator(f"{root} canvas.lk-canvas")
    canvas.wait_for(timeout=60_000)
    _wait_attr(page, root, "version", "v !== undefined && Number(v) >= 1")
    _wait_attr(page, root, "drawn", "Number(v) > 0")  # WebGL drew trajectories
    assert page.locator(f"{root} select.lk-system option").count() > 150  # whole catalogue
    assert page.locator(f"{root} input[data-param]").count() == 3  # beta, rho, sigma

    # Pause the animation so two pictures can be compared, and check Python saw it.
    page.locator(f"{root} button.lk-play").click()
    assert lab.wait_for_kernel_value("viewer.playing", False) is False
    _wait_attr(page, root, "playing", "v === 'false'")
    _wait_attr(page, root, "complete", "v === 'true'")
    page.wait_for_timeout(300)
    before = canvas.screenshot()
    assert nonblank(before)
    version = int(page.locator(root).get_attribute("data-version"))
    t_end = lab.kernel_eval("float(viewer.data.t[-1])")

    # Move rho to the end of its range with the keyboard (a real input + change event).
    rho = page.locator(f"{root} input[data-param='rho']")
    rho.focus()
    page.keyboard.press("End")
    expected = float(rho.get_attribute("max"))
    assert lab.wait_for_kernel_value("viewer.parameters['rho']", expected, timeout_s=60) \
        == pytest.approx(expected)
    _wait_attr(page, root, "version", f"Number(v) > {version}")
    _wait_attr(page, root, "shownVersion", f"Number(v) > {version}")  # a frame drew it
    _wait_attr(page, root, "complete", "v === 'true'", timeout_ms=120_000)
    page.wait_for_timeout(300)
    after = canvas.screenshot()
    assert nonblank(after)
    assert _pixels_changed(before, after) > 0.01  # the attractor at rho = 56 looks different
    assert lab.kernel_eval("viewer.version") > version
    # The trajectories went on from where they were (no restart at t = 0), and the browser
    # acknowledged the segments it took (the stream paces itself by these).
    assert lab.kernel_eval("float(viewer.data.t[0])") == pytest.approx(t_end)
    assert lab.kernel_eval("viewer._acked") >= lab.kernel_eval("viewer._seq") - 1

    # The linked panels arrive from the background thread.
    _wait_attr(page, root, "spectrum", "Number(v) === 3", timeout_ms=120_000)
    _wait_attr(page, root, "orbit", "Number(v) > 10", timeout_ms=120_000)
    assert lab.kernel_eval("len(viewer.spectrum['exponents'])") == 3

    # The restart button draws the initial conditions again: t starts at 0.
    version = int(page.locator(root).get_attribute("data-version"))
    page.locator(f"{root} button.lk-restart").click()
    assert lab.wait_for_kernel_value("viewer.restarts", 1) == 1
    _wait_attr(page, root, "version", f"Number(v) > {version}")
    _wait_attr(page, root, "complete", "v === 'true'", timeout_ms=120_000)
    assert lab.kernel_eval("float(viewer.data.t[0])") == 0.0
    assert lab.kernel_eval("viewer.data.parameters['rho']") == pytest.approx(expected)
    page.wait_for_timeout(300)
    assert _pixels_changed(after, canvas.screenshot()) > 0.01

    # Python -> browser: a system chosen in the kernel is drawn.
    lab.kernel_eval("setattr(viewer, 'system', 'Rossler') or 1")
    _wait_attr(page, root, "system", "v === 'Rossler'")
    assert page.locator(f"{root} input[data-param]").count() == 3  # a, b, c
    assert page.console.real_errors() == []


@pytest.fixture
def attractors_app():
    with labkit_app("attractors") as url:
        yield url


def test_panel_app_renders_in_chromium_and_a_slider_reaches_python(attractors_app, page):
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(attractors_app, timeout=120_000)
    root = page.locator(".lk-attractor")  # Playwright locators pierce Panel's shadow DOM
    root.wait_for(timeout=90_000)
    canvas = root.locator("canvas.lk-canvas")
    page.wait_for_function(
        "() => { const find = (n) => n.querySelector('.lk-attractor') || [...n.querySelectorAll('*')]"
        ".map(e => e.shadowRoot && find(e.shadowRoot)).find(Boolean);"
        " const el = find(document); return el && Number(el.dataset.drawn) > 0; }",
        timeout=90_000)
    root.locator("button.lk-play").click()
    page.wait_for_timeout(500)
    assert nonblank(canvas.screenshot())
    version = int(root.get_attribute("data-version"))
    rho = root.locator("input[data-param='rho']")
    rho.focus()
    page.keyboard.press("Home")  # rho = 0: every trajectory falls to the origin
    deadline = time.monotonic() + 60
    while int(root.get_attribute("data-version")) <= version and time.monotonic() < deadline:
        time.sleep(0.25)
    assert int(root.get_attribute("data-version")) > version  # Python continued
    version = int(root.get_attribute("data-version"))
    root.locator("button.lk-restart").click()  # new initial conditions
    deadline = time.monotonic() + 60
    while root.get_attribute("data-restarts") != "1" and time.monotonic() < deadline:
        time.sleep(0.25)
    while int(root.get_attribute("data-version")) <= version and time.monotonic() < deadline:
        time.sleep(0.25)
    assert root.get_attribute("data-restarts") == "1"
    assert int(root.get_attribute("data-version")) > version
    assert page.console.real_errors() == []
    external = [u for u in requested if not u.startswith(("http://127.0.0.1", "data:", "blob:"))]
    assert external == []  # nothing fetched from a CDN
