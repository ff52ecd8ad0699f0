"""What every labkit widget shares across toolkits: state fields declared once from their
defaults, the anywidget get/set adaptor, the Panel component built from the same ES
module, and serving a Panel app.

A widget is a *controller* (behaviour, calling ``self._get(name)`` and
``self._set(values)``) plus these adaptors; Panel is imported only when a Panel class or
app is built.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, SupportsFloat

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
              title: str) -> None:
    """Serve ``make()`` at ``/<name>`` (one app per browser session) until interrupted.

    ``make()`` runs once before the server starts, so that bad options (an unknown system
    or data set) are an error here rather than a blank page in the browser.

    Raises:
        ConfigError: a bad port, or what ``make()`` raises for bad options.
    """
    import panel as pn

    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"port must be an int in [0, 65535], got {port!r}")
    make()  # raises for bad options before anything listens
    origins = [f"{address}:{port}", f"localhost:{port}"]
    pn.serve({name: make}, port=port, address=address, show=show, websocket_origin=origins,
             title=title)
