"""``labkit serve`` stops cleanly on SIGINT (Ctrl-C) and SIGTERM once a client has opened
the app: exit status 0, one line ``labkit: stopped serving APP (SIGNAL)``, no abort
("terminate called without an active exception", status 134: issue 15), no traceback,
within a few seconds.

The real server runs in a subprocess on a free port. The symmetry dashboard is the app
that aborted: each session trains LieGAN on a daemon thread that is inside torch's C++
code when the interpreter finalizes. The HTTP variants only fetch the page (which builds
a session); the browser variants (marked ``browser``) draw the app in Chromium first.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: Seconds the server may take to start (imports, the app built once) on a loaded machine.
START_S = 180
#: Seconds from the signal to the end of the process.
STOP_S = 10


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    app: str
    url: str
    process: subprocess.Popen[bytes]
    out: Path
    err: Path

    def stop(self, sig: signal.Signals) -> tuple[int, float, str, str]:
        """Send ``sig``; the exit status, seconds until exit, stdout and stderr."""
        start = time.monotonic()
        self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"labkit serve {self.app} still ran {STOP_S} s after {sig.name}; "
                        f"stderr:\n{self.err.read_text()[-3000:]}")
        return code, time.monotonic() - start, self.out.read_text(), self.err.read_text()


@contextlib.contextmanager
def serve(app: str, tmp_path: Path, *, wait_for_port: bool = True) -> Iterator[Served]:
    """``labkit serve APP`` in a subprocess (stdout and stderr to files); killed afterwards
    if a test left it running."""
    port = _free_port()
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with out.open("wb") as fo, err.open("wb") as fe:
        proc = subprocess.Popen([sys.executable, "-m", "labkit.reports.cli", "serve", app,
                                 "--port", str(port)], stdout=fo, stderr=fe, cwd=REPO)
    served = Served(app, f"http://127.0.0.1:{port}/{app}", proc, out, err)
    try:
        deadline = time.monotonic() + START_S
        while wait_for_port:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"labkit serve {app} did not start:\n{err.read_text()[-3000:]}")
                time.sleep(0.3)
        yield served
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _check_clean(app: str, sig: signal.Signals, result: tuple[int, float, str, str]) -> None:
    code, seconds, out, err = result
    assert "terminate called" not in err and "Traceback" not in err, err
    assert code == 0, f"exit status {code}; stderr:\n{err[-3000:]}"
    assert seconds < STOP_S
    assert out.strip().splitlines()[-1] == f"labkit: stopped serving {app} ({sig.name})", out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_stops_cleanly_after_the_page_was_fetched(sig, tmp_path):
    with serve("symmetry", tmp_path) as served:
        with urllib.request.urlopen(served.url, timeout=START_S) as response:
            assert response.status == 200 and b"bokeh" in response.read().lower()
        time.sleep(1)  # the session's training thread is at work now
        _check_clean("symmetry", sig, served.stop(sig))


def test_a_signal_while_the_server_starts_is_clean(tmp_path):
    """Ctrl-C while labkit serve is still building its app (Panel's import, make())."""
    with serve("symmetry", tmp_path, wait_for_port=False) as served:
        deadline = time.monotonic() + START_S
        while "labkit: serving" not in served.out.read_text():
            assert served.process.poll() is None and time.monotonic() < deadline, \
                served.err.read_text()
            time.sleep(0.1)
        time.sleep(0.5)
        _check_clean("symmetry", signal.SIGINT, served.stop(signal.SIGINT))


@pytest.mark.browser
@pytest.mark.parametrize(("app", "sig"), [("symmetry", signal.SIGINT), ("attractors", signal.SIGTERM)],
                         ids=["symmetry-SIGINT", "attractors-SIGTERM"])
def test_serve_stops_cleanly_with_the_app_open_in_chromium(app, sig, tmp_path):
    from tests.browser.conftest import launch_chromium

    def in_chromium(served: Served) -> tuple[int, float, str, str]:
        # A thread of its own: Playwright's sync driver allows one per thread, and the
        # browser tests' session driver may be open on the main thread.
        with launch_chromium() as chromium:
            page = chromium.new_page()
            page.goto(served.url, timeout=START_S * 1000)
            page.wait_for_selector("canvas", timeout=START_S * 1000)  # drawn: the websocket is open
            time.sleep(2)
            return served.stop(sig)

    with serve(app, tmp_path) as served, ThreadPoolExecutor(1) as pool:
        _check_clean(app, sig, pool.submit(in_chromium, served).result())
