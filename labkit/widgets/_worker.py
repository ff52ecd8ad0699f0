"""One background worker for a widget's slow work, where the newest request wins.

Widgets hand :class:`LatestJobWorker` a job each time an input changes. One daemon
thread runs ``run(generation, job)`` for the newest job only; jobs that a newer one
superseded before they started are dropped (``on_drop`` hears of each, so a caller
waiting on a dropped job is not left waiting), and a running job asks
:meth:`LatestJobWorker.stale` between its steps and stops when a newer job has arrived:
that is how a long computation is cancelled, at the next step boundary, without killing
a thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["LatestJobWorker"]


class LatestJobWorker:
    """Runs ``run(generation, job)`` on one daemon thread named ``name``.

    Args:
        run: the work; it should call :meth:`stale` with its ``generation`` between steps
            and return early once it is True.
        name: the thread's name.
        on_drop: called with each job replaced before it started (on the submitting
            thread).
    """

    def __init__(self, run: Callable[[int, Any], None], name: str, *,
                 on_drop: Callable[[Any], None] | None = None) -> None:
        self._run, self._name, self._on_drop = run, name, on_drop
        self._cv = threading.Condition()
        self._pending: tuple[int, Any] | None = None
        self._generation = 0
        self._working = False
        self._thread: threading.Thread | None = None

    def submit(self, job: Any) -> int:
        """Queue ``job`` in place of any job not yet started; returns its generation.
        A running job becomes stale at once."""
        with self._cv:
            dropped = self._pending
            self._generation += 1
            self._pending = (self._generation, job)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            self._cv.notify_all()
            generation = self._generation
        if dropped is not None and self._on_drop is not None:
            self._on_drop(dropped[1])
        return generation

    def stale(self, generation: int) -> bool:
        """True once a newer job has been submitted."""
        with self._cv:
            return generation != self._generation

    def idle(self) -> bool:
        """True when no job is pending or running."""
        with self._cv:
            return self._pending is None and not self._working

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
