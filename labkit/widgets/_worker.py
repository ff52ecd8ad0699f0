"""One background worker for a widget's slow panels, where the newest request wins.

Widgets hand :class:`LatestJobWorker` a job each time an input changes. One daemon
thread runs ``run(generation, job)`` for the newest job only; jobs that a newer one
superseded before they started are dropped, and a running job can ask
:meth:`LatestJobWorker.stale` to stop publishing results nobody wants any more.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["LatestJobWorker"]


class LatestJobWorker:
    """Runs ``run(generation, job)`` on one daemon thread named ``name``."""

    def __init__(self, run: Callable[[int, Any], None], name: str) -> None:
        self._run, self._name = run, name
        self._cv = threading.Condition()
        self._pending: tuple[int, Any] | None = None
        self._generation = 0
        self._working = False
        self._thread: threading.Thread | None = None

    def submit(self, job: Any) -> int:
        """Queue ``job`` in place of any job not yet started; returns its generation."""
        with self._cv:
            self._generation += 1
            self._pending = (self._generation, job)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            self._cv.notify_all()
            return self._generation

    def stale(self, generation: int) -> bool:
        """True once a newer job has been submitted."""
        with self._cv:
            return generation != self._generation

    def wait(self, timeout: float) -> bool:
        """Block until no job is pending or running; True when idle within ``timeout``."""
        with self._cv:
            return self._cv.wait_for(lambda: self._pending is None and not self._working,
                                     timeout=max(0.0, timeout))

    def _loop(self) -> None:
        while True:
            with self._cv:
                if self._pending is None:
                    self._working = False
                    self._cv.notify_all()
                    return
                generation, job = self._pending
                self._pending = None
                self._working = True
            try:
                self._run(generation, job)
            finally:
                with self._cv:
                    self._working = False
