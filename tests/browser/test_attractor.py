"""The AttractorViewer in a real browser: in JupyterLab (renders, a slider reaches the
kernel and the trajectories go on with the new value, the restart button draws initial
conditions again; the colour bar, the labelled status, the panels' axes, the step and reset
buttons, seeding by a click on the Poincare section, zooming the orbit diagram by a drag, a
user's own system and the choice of drawn variables) and as the Panel app of ``labkit serve
attractors``."""

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


def _wait_on(page, selector: str, attr: str, predicate: str, timeout_ms: int = 60_000) -> None:
    """Wait until ``predicate`` (JavaScript over ``v``) holds for the ``attr`` data attribute
    of the element ``selector``."""
    page.wait_for_function(
        f"() => {{ const el = document.querySelector({selector!r});"
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


def test_viewer_controls_work_in_jupyterlab_and_reach_the_kernel(lab, page):
    """Each control of issue 16, driven like a user, seen in the page and in the kernel."""
    lab.open("browser/attractor.ipynb")
    lab.run_all(timeout_s=180)
    root = ".jp-OutputArea .lk-attractor"
    page.locator(f"{root} canvas.lk-canvas").wait_for(timeout=60_000)
    _wait_attr(page, root, "drawn", "Number(v) > 0")
    _wait_attr(page, root, "complete", "v === 'true'", timeout_ms=120_000)

    # The colour bar names the quantity and its range, and follows the colour mode.
    bar = f"{root} canvas.lk-colourbar"
    assert page.locator(bar).is_visible()
    _wait_on(page, bar, "colourLabel", "v === 'time since the change'")
    lo, hi = (float(v) for v in page.locator(bar).get_attribute("data-colour-range").split())
    span = lab.kernel_eval("float(viewer.data.t[-1] - viewer.data.t[0])")
    assert lo == 0.0 and hi == pytest.approx(span, rel=1e-3)
    assert len(page.locator(bar).get_attribute("data-colour-ticks").split()) >= 3
    page.locator(f"{root} select.lk-colour").select_option("speed")
    assert lab.wait_for_kernel_value("viewer.color_by", "speed") == "speed"
    _wait_on(page, bar, "colourLabel", "v === 'speed |f(y)|'")
    _wait_on(page, bar, "colourRange", "v && Number(v.split(' ')[0]) > 0")  # speeds, not times

    # The status says what its numbers are: the kernel's compute, and the wait seen here.
    _wait_attr(page, root, "status", r"/^integrated 96 × \d+ RK4 steps in [\d.e-]+ s of compute; "
               r"first samples sent [\d.e-]+ s after the change; view ready [\d.e-]+ s after "
               r"the change$/.test(v)", timeout_ms=120_000)

    # The side panels have ticks and labels on both axes.
    _wait_attr(page, root, "spectrum", "Number(v) === 3", timeout_ms=120_000)
    _wait_attr(page, root, "orbit", "Number(v) > 10", timeout_ms=120_000)
    spectrum = page.locator(f"{root} canvas.lk-spectrum")
    assert spectrum.get_attribute("data-x-label") == "exponent index i"
    assert spectrum.get_attribute("data-x-ticks") == "1 2 3"
    assert spectrum.get_attribute("data-y-label") == "λ_i (1 / time)"
    assert len(spectrum.get_attribute("data-y-ticks").split()) >= 2
    orbit = page.locator(f"{root} canvas.lk-orbit")
    assert orbit.get_attribute("data-x-label") == "parameter rho"
    assert orbit.get_attribute("data-y-label") == "maxima of x0"
    ticks = [float(v) for v in orbit.get_attribute("data-x-ticks").split()]
    assert len(ticks) >= 3 and 0 <= ticks[0] and ticks[-1] <= 56
    assert len(orbit.get_attribute("data-y-ticks").split()) >= 2

    # A drag over the orbit diagram zooms it to that range of rho; reset zoom undoes it.
    orbit.scroll_into_view_if_needed()
    box = orbit.bounding_box()
    page.mouse.move(box["x"] + 120, box["y"] + 80)
    page.mouse.down()
    page.mouse.move(box["x"] + 200, box["y"] + 80, steps=5)
    page.mouse.up()
    deadline = time.monotonic() + 30
    while not lab.kernel_eval("viewer.orbit_range") and time.monotonic() < deadline:
        time.sleep(0.25)
    lo, hi = lab.kernel_eval("viewer.orbit_range")
    left, _, right, _ = orbit.evaluate("canvas => canvas.lkAxes.box")  # the plot, in pixels
    assert 0 < lo < hi < 56 and hi - lo == pytest.approx(80 / (right - left) * 56, rel=0.1)
    assert lab.wait_for_kernel_value("viewer.orbit.get('range')", [lo, hi], timeout_s=120) \
        == [lo, hi]
    _wait_attr(page, root, "orbitRange", f"v && Math.abs(Number(v.split(' ')[0]) - {lo}) < 0.01")
    reset_zoom = page.locator(f"{root} button.lk-orbit-reset")
    assert reset_zoom.is_enabled()
    reset_zoom.click()
    assert lab.wait_for_kernel_value("viewer.orbit_range", []) == []

    # Pause, step one sample forward, reset to the initial conditions.
    page.locator(f"{root} button.lk-play").click()
    assert lab.wait_for_kernel_value("viewer.playing", False) is False
    _wait_attr(page, root, "complete", "v === 'true'", timeout_ms=120_000)
    version = int(page.locator(root).get_attribute("data-version"))
    t_end = lab.kernel_eval("float(viewer.data.t[-1])")
    gap = lab.kernel_eval("float(viewer.data.t[1] - viewer.data.t[0])")
    page.locator(f"{root} button.lk-step").click()
    assert lab.wait_for_kernel_value("viewer.steps", 1) == 1
    _wait_attr(page, root, "version", f"Number(v) > {version}")
    assert lab.wait_for_kernel_value("round(float(viewer.data.t[-1]), 9)", round(t_end + gap, 9)) \
        == pytest.approx(t_end + gap)
    page.locator(f"{root} button.lk-reset").click()
    assert lab.wait_for_kernel_value("viewer.resets", 1) == 1
    assert lab.wait_for_kernel_value("float(viewer.data.t[0])", 0.0) == 0.0
    _wait_attr(page, root, "resets", "v === '1'")

    # A click on the Poincare section seeds trajectories at that point.
    _wait_attr(page, root, "section", "Number(v) > 0", timeout_ms=120_000)
    section = page.locator(f"{root} canvas.lk-section")
    assert section.get_attribute("data-x-label") == "x0"
    assert section.get_attribute("data-y-label") == "x1"
    section.click(position={"x": 190, "y": 100})
    assert lab.wait_for_kernel_value("viewer.seeded", 8, timeout_s=60) == 8
    assert lab.wait_for_kernel_value("viewer.shape[0]", 104, timeout_s=60) == 104
    _wait_attr(page, root, "nIc", "v === '104'")
    # Eight trajectories start together there (within 1e-3 relative), in the section's plane.
    assert lab.kernel_eval("float((viewer.ensemble.y0[96:] - viewer.ensemble.y0[96]).abs().max()"
                           " / viewer.ensemble.y0[96].abs().clamp_min(1).max())") < 5e-3
    lo, hi = lab.kernel_eval("viewer.section_view['span']")
    assert lo <= lab.kernel_eval("float(viewer.ensemble.y0[96, 2])") <= hi

    # A user's own system (set from Python) is drawn; the drawn variables are chosen here.
    lab.kernel_eval("setattr(viewer, 'system', own) or 1")
    _wait_attr(page, root, "system", "v === 'ring5'")
    assert page.locator(f"{root} select.lk-system option[value='ring5']").count() == 1
    assert page.locator(f"{root} input[data-param]").count() == 1  # F
    assert page.locator(f"{root} select.lk-variable").count() == 3
    assert page.locator(f"{root} select.lk-variable[data-axis='2'] option").count() == 5
    page.locator(f"{root} select.lk-variable[data-axis='2']").select_option("4")
    assert lab.wait_for_kernel_value("viewer.variables", [0, 1, 4]) == [0, 1, 4]
    _wait_attr(page, root, "variables", "v === '0,1,4'")
    assert lab.wait_for_kernel_value("list(viewer.var_names)", ["x0", "x1", "x4"]) \
        == ["x0", "x1", "x4"]
    _wait_attr(page, root, "drawn", "Number(v) > 0")
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
    version = int(root.get_attribute("data-version"))
    root.locator("button.lk-step").click()  # a step forward reaches Python too
    while int(root.get_attribute("data-version")) <= version and time.monotonic() < deadline:
        time.sleep(0.25)
    assert root.get_attribute("data-steps") == "1"
    assert int(root.get_attribute("data-version")) > version
    assert page.console.real_errors() == []
    external = [u for u in requested if not u.startswith(("http://127.0.0.1", "data:", "blob:"))]
    assert external == []  # nothing fetched from a CDN
