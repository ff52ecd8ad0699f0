"""Browser test harness: JupyterLab on 127.0.0.1 driven by Playwright on Debian's Chromium.

Fixtures:
    lab_server  (session) a JupyterLab server with a token, on a free port, serving a
                temporary copy of tests/browser/notebooks and notebooks/ (:func:`start_lab`).
    browser     (session) Chromium launched with :data:`CHROMIUM_FLAGS`.
    page        (test)    a fresh page whose console errors are collected; a screenshot is
                saved to test-artifacts/<test>.png when the test ends.
    lab         (test)    a :class:`Lab` helper bound to ``page`` and ``lab_server``.

Every widget test of labkit reuses these.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("LABKIT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
#: Console messages that say nothing about labkit's pages (none are known so far).
BENIGN_CONSOLE: tuple[str, ...] = ()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if str(item.path).startswith(str(Path(__file__).parent)):
            item.add_marker(pytest.mark.browser)


def stop_process(proc: subprocess.Popen[Any], grace_s: float = 10) -> None:
    """SIGTERM, then SIGKILL if ``proc`` has not exited after ``grace_s`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def labkit_app(app: str) -> Iterator[str]:
    """Run ``labkit serve APP`` on a free port; yields the app's URL, stops it afterwards.

    Only the port is awaited: fetching the page builds a session, so short-timeout
    retries would pile up sessions on a loaded machine. The server's output goes to
    ``test-artifacts/labkit-serve-APP.log``.
    """
    port = _free_port()
    log = REPO / "test-artifacts" / f"labkit-serve-{app}.log"
    log.parent.mkdir(exist_ok=True)
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "labkit.reports.cli", "serve", app,
                                 "--port", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                cwd=REPO)
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    out.flush()
                    raise RuntimeError(f"labkit serve {app} did not start: "
                                       f"{log.read_text()}") from None
                time.sleep(0.5)
        try:
            yield f"http://127.0.0.1:{port}/{app}"
        finally:
            stop_process(proc)


@dataclass
class LabServer:
    url: str
    token: str
    root: Path
    runtime_dir: Path
    process: subprocess.Popen[bytes]
    log: Path

    def api(self, path: str) -> Any:
        req = urllib.request.Request(f"{self.url}/api/{path}",
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())


@contextlib.contextmanager
def start_lab(base: Path, folders: dict[str, Path]) -> Iterator[LabServer]:
    """A JupyterLab server with a token on a free port, serving copies of ``folders``
    (name in the server's root -> source folder), its settings and runtime under ``base``.
    Used by the ``lab_server`` fixture and by scripts (docs/gallery/make_gallery.py)."""
    root, config, runtime = base / "root", base / "config", base / "runtime"
    for name, source in folders.items():
        shutil.copytree(source, root / name)
    (config / "labconfig").mkdir(parents=True)
    # No "would you like news?" prompt: it would cover the notebook.
    (config / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    # No autosave: a notebook saved with live-widget outputs would, when a later test's page
    # restores it, log "widget model not found" for widgets of a kernel that is gone.
    settings = base / "settings"
    (settings / "@jupyterlab" / "docmanager-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "docmanager-extension" / "plugin.jupyterlab-settings").write_text(
        json.dumps({"autosave": False}))
    port, token = _free_port(), secrets.token_hex(16)
    env = os.environ | {
        "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_RUNTIME_DIR": str(runtime),
        "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"), "JUPYTER_PLATFORM_DIRS": "1",
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
    }
    log = base / "server.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
           "--LabApp.news_url=None", "--ServerApp.port_retries=0", "--allow-root"]
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
    server = LabServer(f"http://127.0.0.1:{port}", token, root, runtime, proc, log)
    deadline = time.monotonic() + 90
    while True:
        try:
            server.api("status")
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"JupyterLab did not start:\n{log.read_text()[-3000:]}") from None
            time.sleep(0.5)
    try:
        yield server
    finally:
        stop_process(proc, grace_s=20)


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    with start_lab(tmp_path_factory.mktemp("jupyterlab"),
                   {"browser": Path(__file__).parent / "notebooks",
                    "notebooks": REPO / "notebooks"}) as server:
        yield server


@contextlib.contextmanager
def playwright_driver() -> Iterator[Any]:
    """Playwright's sync driver. One per thread at a time: a second ``sync_playwright()``
    while one is open fails ("Sync API inside the asyncio loop"), so the tests share the
    session's (:func:`playwright_instance`) and launch browsers from it."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"Chromium not found at {CHROMIUM}: run 'make browser' "
                           "(apt-get install chromium)")
    with sync_playwright() as pw:
        yield pw


@contextlib.contextmanager
def launch_chromium(pw: Any = None) -> Iterator[Any]:
    """Debian's Chromium with :data:`CHROMIUM_FLAGS` (headless, software rendering, no
    network side traffic), launched from the driver
    ``pw`` (a driver of its own when None: scripts outside pytest)."""
    if pw is None:
        with playwright_driver() as own, launch_chromium(own) as chromium:
            yield chromium
        return
    chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Any]:
    with playwright_driver() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright_instance: Any) -> Iterator[Any]:
    with launch_chromium(playwright_instance) as chromium:
        yield chromium


@dataclass
class Console:
    """Console errors and uncaught page errors seen by a page."""

    errors: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def real_errors(self) -> list[str]:
        return [e for e in self.errors if not any(b in e for b in BENIGN_CONSOLE)]


@contextlib.contextmanager
def open_page(browser: Any, name: str, *, before_close: str | None = None) -> Iterator[Any]:
    """A fresh page whose console errors are collected; a screenshot goes to
    test-artifacts/<name>.png when it closes (after running ``before_close`` in it)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.console = Console()
    pg.console.attach(pg)
    yield pg
    ARTIFACTS.mkdir(exist_ok=True)
    name = name.replace("/", "_").replace("[", "-").replace("]", "")
    try:
        if before_close:
            pg.evaluate(before_close)
        pg.screenshot(path=str(ARTIFACTS / f"{name}.png"), timeout=60_000)
    finally:
        context.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    with open_page(browser, request.node.name) as pg:
        yield pg


def nonblank(png: bytes, min_colours: int = 8) -> bool:
    """True when a screenshot holds a picture: several colours, not one flat fill."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 16)
    return colours is None or len(colours) >= min_colours


_STATE_JS = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!w || !w.content || !w.sessionContext) return null;
  const kernel = w.sessionContext.session && w.sessionContext.session.kernel;
  const cells = w.content.widgets.filter(c => c.model.type === 'code');
  return {status: kernel ? kernel.status : null, id: kernel ? kernel.id : null,
          counts: cells.map(c => c.model.executionCount)};
}"""


@dataclass
class Lab:
    """Drive JupyterLab in ``page``: open a notebook, run it, find outputs, ask the kernel."""

    page: Any
    server: LabServer

    def open(self, path: str) -> None:
        """Open ``path`` (relative to the server root) and wait for an idle kernel."""
        # ?reset: start from an empty workspace, not the notebooks earlier tests left open
        self.page.goto(f"{self.server.url}/lab/tree/{path}?reset&token={self.server.token}")
        self.page.wait_for_function("() => window.jupyterapp !== undefined", timeout=60_000)
        # JupyterLab restores the workspace, so notebooks of earlier tests may open too:
        # wait until *this* notebook is the current widget, and shown.
        self.page.wait_for_function(
            "(p) => { const w = window.jupyterapp.shell.currentWidget;"
            " return w && w.context && w.context.path === p && w.isVisible; }",
            arg=path, timeout=60_000)
        self.page.wait_for_function(
            f"() => {{ const s = ({_STATE_JS})(); return s && s.status === 'idle'; }}",
            timeout=90_000)

    def run_all(self, timeout_s: float = 120) -> None:
        """Run every cell and wait until each code cell has executed and the kernel is idle."""
        self.page.evaluate(
            "() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        self.page.wait_for_function(
            f"""() => {{ const s = ({_STATE_JS})();
                 return s && s.status === 'idle' && s.counts.every(c => c !== null); }}""",
            timeout=timeout_s * 1000)

    def state(self) -> dict[str, Any]:
        return self.page.evaluate(_STATE_JS)

    def widget_outputs(self, selector: str = ".jupyter-widgets") -> Any:
        """A locator of the rendered widget views in the notebook's outputs."""
        return self.page.locator(f".jp-OutputArea {selector}")

    def kernel_eval(self, expression: str, timeout_s: float = 30) -> Any:
        """Evaluate ``expression`` in the notebook's own kernel (a second client on its
        connection file) and return the value parsed from its ``repr``.

        Only the shell channel is read. ``BlockingKernelClient.wait_for_ready`` is avoided on
        purpose: it drains IOPub until 0.2 s pass without a message, which never happens
        while a playing widget keeps the kernel publishing comm echoes and status messages.
        """
        import ast

        from jupyter_client import BlockingKernelClient

        kernel_id = self.state()["id"]
        client = BlockingKernelClient()
        client.load_connection_file(str(self.server.runtime_dir / f"kernel-{kernel_id}.json"))
        client.start_channels(iopub=False, stdin=False, hb=False, control=False)
        try:
            msg_id = client.execute("", silent=True, store_history=False,
                                    user_expressions={"v": expression})
            deadline = time.monotonic() + timeout_s
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"kernel {kernel_id} did not answer {expression!r} "
                                       f"within {timeout_s} s")
                try:
                    reply = client.get_shell_msg(timeout=remaining)
                except Exception as exc:  # queue.Empty: nothing within the deadline
                    raise TimeoutError(f"kernel {kernel_id} did not answer {expression!r} "
                                       f"within {timeout_s} s") from exc
                if reply["parent_header"].get("msg_id") == msg_id:
                    break
            value = reply["content"]["user_expressions"]["v"]
            if value["status"] != "ok":
                raise RuntimeError(f"{expression!r} raised {value.get('ename')}: "
                                   f"{value.get('evalue')}")
            return ast.literal_eval(value["data"]["text/plain"])
        finally:
            client.stop_channels()

    def wait_for_kernel_value(self, expression: str, expected: Any, timeout_s: float = 20) -> Any:
        """Poll :meth:`kernel_eval` until it returns ``expected``; return the last value."""
        deadline = time.monotonic() + timeout_s
        value = self.kernel_eval(expression)
        while value != expected and time.monotonic() < deadline:
            time.sleep(0.25)
            value = self.kernel_eval(expression)
        return value

    def shutdown_kernel(self) -> None:
        self.page.evaluate(
            "() => window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")


@pytest.fixture
def lab(page: Any, lab_server: LabServer) -> Iterator[Lab]:
    helper = Lab(page, lab_server)
    yield helper
    try:
        helper.shutdown_kernel()
    except Exception:  # the page may already be gone; the server stops at session end
        pass
