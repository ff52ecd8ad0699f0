"""AttractorViewer latency: a parameter slider's input event to the first frame that draws
the new parameters, measured in the browser.

The script starts JupyterLab (the browser tests' harness: tests/browser/conftest.py) and
Debian's Chromium under Playwright, opens one notebook per ensemble size holding
``AttractorViewer(system="Lorenz", n_ic=N)``, waits for its first picture, then moves the
``rho`` slider one step with the keyboard, ``--changes`` times. For each change it records,
in the page, the time of the slider's ``input`` event and the time of the first animation
frame that draws a sample of the new version (the widget's ``data-shown-at``, set when that
frame has been drawn: by the drawing worker, or on the page), and reports p50/p95/max per
size:

- **idle**: each change made :data:`IDLE_MS` after the previous one was drawn (clicks on
  a slider); the viewer streams at the pace of its animation meanwhile;
- **streaming**: each change made as soon as the previous one was drawn, while its first
  segments are still coming (a drag), which also exercises cancellation.

What a change costs now is the kernel integrating one short segment (a few samples of
every trajectory, :func:`~labkit.widgets._attractor_stream.segment_lengths`) from the
present states, one message of those samples, one texture upload and one frame; the
figures say what that is on the machine at hand. This is a script, not a test:

    .venv/bin/python bench/viewer_latency.py                    # 128 / 1,024 / 4,096, 15 changes
    .venv/bin/python bench/viewer_latency.py --sizes 1024 --changes 20
    .venv/bin/python bench/viewer_latency.py --quick            # a smoke run

Needs ``/usr/bin/chromium`` (``make browser``) and Playwright (in the dev dependencies).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.browser.conftest import (  # noqa: E402  (the harness lives with the tests)
    Lab,
    LabServer,
    _free_port,
    launch_chromium,
    open_page,
    stop_process,
)

ROOT = ".jp-OutputArea .lk-attractor"
#: Waits, in milliseconds: the first picture of a large ensemble, one change.
FIRST_PICTURE_MS = 300_000
CHANGE_MS = 60_000
#: Time between a change being drawn and the next "idle" change (the side panels' thread
#: runs meanwhile, as it would for a user clicking a slider now and then).
IDLE_MS = 1000
#: Time the first picture plays before the first change.
WARM_MS = 3000

NOTEBOOK = {
    "cells": [
        {"cell_type": "code", "execution_count": None, "id": "params", "metadata": {},
         "outputs": [], "source": ["n_ic = {n_ic}"]},
        {"cell_type": "code", "execution_count": None, "id": "viewer", "metadata": {},
         "outputs": [],
         "source": ["from labkit.widgets import AttractorViewer\n",
                    "\n",
                    "viewer = AttractorViewer(system=\"Lorenz\", n_ic=n_ic)\n",
                    "viewer"]},
    ],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                "name": "python3"}},
    "nbformat": 4, "nbformat_minor": 5,
}

# In the page: note when the slider's input event fires (capture phase, before the
# widget's own handler), then resolve with the time from it to the first frame that drew
# a sample of a newer version.
MEASURE_JS = """async ([root, before, timeoutMs]) => {
  const el = document.querySelector(root);
  const t0 = window.__lkInputAt;
  const start = performance.now();
  while (!(Number(el.dataset.shownVersion || 0) > before)) {
    if (performance.now() - start > timeoutMs) return null;
    await new Promise((r) => requestAnimationFrame(r));
  }
  return Number(el.dataset.shownAt) - t0;
}"""

INSTALL_JS = """(root) => {
  document.querySelector(root).addEventListener("input", (event) => {
    if (event.target.dataset.param === "rho") window.__lkInputAt = performance.now();
  }, true);
}"""


#: Runs JupyterLab with TCP_NODELAY on its kernel websockets (``--nodelay``). Jupyter
#: Server does not set it, so a small message to the browser (a kernel status, a widget
#: update) can wait for the TCP acknowledgement of the one before, which the receiver may
#: delay by ~40 ms (Nagle's algorithm meeting delayed ACKs).
NODELAY_LAUNCHER = """
import sys
from jupyter_server.services.kernels import websocket

opened = websocket.KernelWebsocketHandler.open


async def open(self, kernel_id):
    self.set_nodelay(True)
    return await opened(self, kernel_id)


websocket.KernelWebsocketHandler.open = open
from jupyterlab.labapp import main

sys.exit(main())
"""


@contextlib.contextmanager
def jupyterlab(root: Path, *, nodelay: bool = False) -> Iterator[LabServer]:
    """JupyterLab on a free port serving ``root`` (the browser tests' settings: no news
    prompt, no autosave); ``nodelay``: with :data:`NODELAY_LAUNCHER`."""
    base = Path(tempfile.mkdtemp(prefix="labkit-latency-"))
    config, settings = base / "config", base / "settings"
    (config / "labconfig").mkdir(parents=True)
    (config / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    (settings / "@jupyterlab" / "docmanager-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "docmanager-extension" / "plugin.jupyterlab-settings").write_text(
        json.dumps({"autosave": False}))
    port, token = _free_port(), secrets.token_hex(16)
    env = os.environ | {
        "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"), "JUPYTER_PLATFORM_DIRS": "1",
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
    }
    log = base / "server.log"
    launch = ["-c", NODELAY_LAUNCHER] if nodelay else ["-m", "jupyterlab"]
    cmd = [sys.executable, *launch, "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
           "--LabApp.news_url=None", "--ServerApp.port_retries=0", "--allow-root"]
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    server = LabServer(f"http://127.0.0.1:{port}", token, root, base / "runtime", proc, log)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                server.api("status")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not start:\n{log.read_text()[-3000:]}") \
                        from None
                time.sleep(0.5)
        yield server
    finally:
        stop_process(proc, grace_s=20)
        shutil.rmtree(base, ignore_errors=True)


def _wait(page, attr: str, predicate: str, timeout_ms: int) -> None:
    page.wait_for_function(
        f"() => {{ const el = document.querySelector('{ROOT}');"
        f" if (!el) return false; const v = el.dataset['{attr}']; return {predicate}; }}",
        timeout=timeout_ms)


def measure(lab: Lab, n_ic: int, changes: int, mode: str) -> list[float]:
    """Latencies (ms) of ``changes`` rho changes of one viewer; ``mode`` "idle" or
    "streaming"."""
    page = lab.page
    rho = page.locator(f"{ROOT} input[data-param='rho']")
    out = []
    for i in range(changes):
        if mode == "idle":
            page.wait_for_timeout(IDLE_MS)
        before = int(page.locator(ROOT).get_attribute("data-shown-version") or 0)
        rho.focus()
        page.keyboard.press("ArrowRight" if i % 2 == 0 else "ArrowLeft")  # input + change
        ms = page.evaluate(MEASURE_JS, [ROOT, before, CHANGE_MS])
        if ms is None:
            raise RuntimeError(f"n_ic={n_ic}: change {i} was not drawn within {CHANGE_MS} ms")
        out.append(float(ms))
    return out


def run_size(browser, server: LabServer, n_ic: int, changes: int,
             modes: list[str]) -> dict[str, list[float]]:
    name = f"latency_{n_ic}.ipynb"
    text = json.dumps(NOTEBOOK).replace("{n_ic}", str(n_ic))
    (server.root / name).write_text(text)
    with open_page(browser, f"bench-viewer-latency-{n_ic}",
                   before_close="() => { window.requestAnimationFrame = () => 0; }") as page:
        lab = Lab(page, server)
        try:
            lab.open(name)
            lab.run_all(timeout_s=FIRST_PICTURE_MS / 1000)
            _wait(page, "drawn", "Number(v) > 0", FIRST_PICTURE_MS)
            page.wait_for_timeout(WARM_MS)
            page.evaluate(INSTALL_JS, ROOT)
            measure(lab, n_ic, 1, "idle")  # warm-up (first compilations, first upload)
            results = {mode: measure(lab, n_ic, changes, mode) for mode in modes}
            errors = page.console.real_errors()
            if errors:
                raise RuntimeError(f"console errors with n_ic={n_ic}: {errors[:3]}")
        finally:
            with contextlib.suppress(Exception):
                lab.shutdown_kernel()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 1024, 4096])
    parser.add_argument("--changes", type=int, default=15)
    parser.add_argument("--modes", nargs="+", default=["idle", "streaming"],
                        choices=["idle", "streaming"])
    parser.add_argument("--quick", action="store_true", help="128 trajectories, 3 changes")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.changes = [128], 3

    import torch

    from labkit.widgets._attractor_stream import segment_lengths

    rows = []
    root = Path(tempfile.mkdtemp(prefix="labkit-latency-root-"))
    try:
        with jupyterlab(root) as server, launch_chromium() as browser:
            for n_ic in args.sizes:
                res = run_size(browser, server, n_ic, args.changes, args.modes)
                rows.append((n_ic, res))
                summary = ", ".join(f"{m} p50 {np.percentile(v, 50):.0f} ms"
                                    for m, v in res.items())
                print(f"n_ic={n_ic}: {summary}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print()
    print(f"{datetime.date.today()}, {platform.machine()} {os.cpu_count()}-core CPU, "
          f"torch {torch.__version__}, Chromium headless (software WebGL), "
          f"Lorenz, periods 10, samples 800, {args.changes} changes per size; first segment "
          + ", ".join(f"{segment_lengths(n)[0]} samples at {n:,}" for n in args.sizes))
    print()
    head = "| n_ic |" + "".join(f" {m} p50 ms | {m} p95 ms | {m} max ms |" for m in args.modes)
    print(head)
    print("|---:|" + "---:|" * (3 * len(args.modes)))
    for n_ic, res in rows:
        cells = "".join(f" {np.percentile(v, 50):.0f} | {np.percentile(v, 95):.0f} | "
                        f"{max(v):.0f} |" for v in (res[m] for m in args.modes))
        print(f"| {n_ic:,} |{cells}")


if __name__ == "__main__":
    main()
