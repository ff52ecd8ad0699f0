"""What every labkit widget shares across toolkits: state fields declared once from their
defaults, the anywidget get/set adaptor, the Panel component built from the same ES
module, and serving a Panel app.

A widget is a *controller* (behaviour, calling ``self._get(name)`` and
``self._set(values)``) plus these adaptors; Panel is imported only when a Panel class or
app is built.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn, SupportsFloat

from labkit.errors import ConfigError
from labkit.widgets._assets import widget_module, widget_style

__all__ = [
    "PANEL_LAYOUT",
    "AnyWidgetState",
    "declare_fields",
    "finite_or_none",
    "panel_component",
    "serve_app",
    "traitlet_fields",
]

#: Python types of state defaults, in the order toolkits list their field types; most
#: specific first (a bool is also an int).
KINDS = (bool, int, float, str, bytes, dict, list)
#: Keyword arguments a Panel component takes besides its state.
PANEL_LAYOUT = frozenset({"sizing_mode", "width", "height", "min_height", "margin", "name"})


def finite_or_none(value: SupportsFloat) -> float | None:
    """JSON has no NaN: a missing or non-finite number travels as null."""
    value = float(value)
    return value if math.isfinite(value) else None


def declare_fields(defaults: Mapping[str, Any], types: Sequence[Callable[[Any], Any]],
                   wrap: Callable[[Any], Any] = lambda field: field) -> dict[str, Any]:
    """One field per entry of ``defaults`` for one toolkit: ``types`` are that toolkit's
    field types for :data:`KINDS`, in order (traitlets, ``param`` parameters), each built
    from its default and passed through ``wrap``."""
    by_kind = dict(zip(KINDS, types, strict=True))
    return {name: wrap(by_kind[next(k for k in KINDS if isinstance(default, k))](default))
            for name, default in defaults.items()}


def traitlet_fields(defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Synced traitlets for an anywidget class body: ``locals().update(...)``."""
    import traitlets

    return declare_fields(defaults, (traitlets.Bool, traitlets.Int, traitlets.Float,
                                     traitlets.Unicode, traitlets.Bytes, traitlets.Dict,
                                     traitlets.List), wrap=lambda trait: trait.tag(sync=True))


class AnyWidgetState:
    """The controller's ``_get``/``_set`` on an anywidget: several fields in one message,
    ``version`` last (the front end redraws when it changes)."""

    def _get(self, name: str) -> Any:
        return getattr(self, name)

    def _set(self, values: Mapping[str, Any]) -> None:
        with self.hold_sync():  # type: ignore[attr-defined]
            for key, value in values.items():
                if key != "version":
                    setattr(self, key, value)
            if "version" in values:
                self.version = values["version"]


def panel_component(name: str, *, doc: str, module: str, asset: str, controller: type,
                    defaults: Mapping[str, Any],
                    init: Callable[..., None]) -> type:
    """A :class:`panel.custom.AnyWidgetComponent` subclass running the ES module of widget
    ``asset`` (:func:`~labkit.widgets._assets.widget_module`: the same string as the
    anywidget's ``_esm``) and ``widgets/<asset>.css``, with ``controller``'s behaviour.

    ``init(self, **params)`` is the component's ``__init__``: it checks and pops its own
    options, calls ``pn.custom.AnyWidgetComponent.__init__(self, **params)`` and the
    controller's ``_start``; inputs are watched afterwards.
    """
    import panel as pn
    import param

    namespace: dict[str, Any] = {
        "__doc__": doc,
        "__module__": module,
        "_esm": widget_module(asset),
        "_stylesheets": [widget_style(asset)],
    }
    namespace.update(declare_fields(defaults, (param.Boolean, param.Integer, param.Number,
                                               param.String, param.Bytes, param.Dict,
                                               param.List)))

    def _on_events(self: Any, *events: Any) -> None:
        for event in events:
            self._changed(event.name, event.old, event.new)

    def _get(self: Any, key: str) -> Any:
        return getattr(self, key)

    def _set(self: Any, values: Mapping[str, Any]) -> None:
        rest = {k: v for k, v in values.items() if k != "version"}
        if rest:
            self.param.update(**rest)
        if "version" in values:
            self.version = values["version"]

    namespace.update(__init__=init, _on_events=_on_events, _get=_get, _set=_set)
    return type(name, (pn.custom.AnyWidgetComponent, controller), namespace)


def serve_app(name: str, make: Callable[[], Any], *, port: int, address: str, show: bool,
              title: str) -> NoReturn:
    """Serve ``make()`` at ``/<name>`` (one app per browser session) until SIGINT (Ctrl-C)
    or SIGTERM, then end the process with exit status 0.

    ``make()`` runs once before the server starts, so that bad options (an unknown system
    or data set) are an error here rather than a blank page in the browser.

    This is the server loop of ``labkit serve``: it owns the process. On the first SIGINT
    or SIGTERM (also one that arrives while ``make()`` runs) the IOLoop stops, the server
    closes its port and connections, one line ``labkit: stopped serving NAME (SIGNAL)``
    goes to stdout, and the process ends with status 0 (a stop that was asked for is a
    success; not 130/143, which would say the process died of the signal). A second
    signal during that shutdown ends the process at once, with the same status.

    The process ends through :func:`os._exit`, after the ``atexit`` functions have run and
    stdout and stderr are flushed, not through interpreter finalization: each browser
    session's app runs its work on daemon threads (the symmetry dashboard's LieGAN
    training, the attractor viewer's stream and panels) that are inside torch's C++ code
    most of the time and cannot be interrupted from outside. CPython before 3.14 ends such
    threads during finalization with ``pthread_exit``, whose unwinding through torch's C++
    frames calls ``std::terminate``: "terminate called without an active exception" and
    an abort (status 134), which is what issue 15 reported. ``os._exit`` ends them with
    the process instead; labkit keeps nothing that needs finalizing (its files are written
    atomically).

    Must be called from the main thread (signal handlers live there).

    Raises:
        ConfigError: a bad port, a call from another thread, or what ``make()`` raises
            for bad options (the process then ends normally, by the caller).
    """
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"port must be an int in [0, 65535], got {port!r}")
    if threading.current_thread() is not threading.main_thread():
        raise ConfigError("serve_app must run in the main thread: it stops on SIGINT/SIGTERM")
    received: list[int] = []
    loop: list[Any] = []  # the server's IOLoop, once it is set up

    def on_signal(signum: int, frame: Any) -> None:
        if received:  # a second signal while shutting down: do not wait any longer
            _end_process(name, received[0])
        received.append(signum)
        if loop:  # stop the IOLoop from inside it (a signal handler must not touch it)
            loop[0].asyncio_loop.call_soon_threadsafe(loop[0].stop)
        else:  # before the server is set up: unwind make() or the set-up
            raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            from panel.io.server import get_server  # seconds: a Ctrl-C here is handled too

            make()  # raises for bad options before anything listens
            origins = [f"{address}:{port}", f"localhost:{port}"]
            server = get_server({name: make}, port=port, address=address, show=show,
                                websocket_origin=origins, title=title, verbose=True, start=False)
            for sig in previous:  # get_server installed a SIGINT handler of its own
                signal.signal(sig, on_signal)
            loop.append(server.io_loop)
        except KeyboardInterrupt:
            if not received:
                raise
            _end_process(name, received[0])
        if not received:
            server.start()
            server.io_loop.start()  # returns once on_signal has stopped it
        with contextlib.suppress(Exception):
            server.stop()  # close the port and the connections
        _end_process(name, received[0] if received else None)
    except BaseException:
        for sig, handler in previous.items():  # an error in make(): the caller reports it
            signal.signal(sig, handler)
        raise


def _end_process(name: str, signum: int | None) -> NoReturn:
    """Say that serving stopped, run the ``atexit`` functions, flush, and end the process
    with status 0 without interpreter finalization (see :func:`serve_app`)."""
    for sig in (signal.SIGINT, signal.SIGTERM):  # another signal now: end at once
        signal.signal(sig, lambda *_: os._exit(0))
    how = f" ({signal.Signals(signum).name})" if signum is not None else ""
    try:
        print(f"labkit: stopped serving {name}{how}", flush=True)
        atexit._run_exitfuncs()  # what a normal exit would run; errors are printed, not raised
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(0)
