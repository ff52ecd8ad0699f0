"""The symmetry dashboard as a Panel app (``labkit serve symmetry``).

The browser side is the same ES module as the Jupyter widget (``widgets/symmetry.js``),
run by Panel's :class:`panel.custom.AnyWidgetComponent`; the behaviour is the same
:class:`~labkit.widgets._symmetry.SymmetryController`. Panel is imported only when an app
is built.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from labkit.errors import ConfigError
from labkit.widgets._assets import widget_asset
from labkit.widgets._symmetry import INPUTS, SymmetryController, state_fields

__all__ = ["serve_symmetry", "symmetry_app", "symmetry_panel_class"]

_LAYOUT = {"sizing_mode", "width", "height", "min_height", "margin", "name"}


@functools.cache
def symmetry_panel_class() -> type:
    """The Panel component class (built on first use, so importing labkit never imports
    Panel)."""
    import panel as pn
    import param

    namespace: dict[str, Any] = {
        "__doc__": "SymmetryDashboard as a Panel component (same ES module and behaviour).",
        "__module__": __name__,
        "_esm": widget_asset("symmetry.js"),
        "_stylesheets": [widget_asset("symmetry.css").read_text()],
    }
    namespace.update(state_fields((param.Boolean, param.Integer, param.Number, param.String,
                                   param.Bytes, param.Dict, param.List)))

    def __init__(self: Any, *, data: Any = None, models: Mapping[str, Any] | None = None,
                 **params: Any) -> None:
        unknown = sorted(set(params) - set(INPUTS) - _LAYOUT)
        if unknown:
            raise ConfigError(f"unknown SymmetryPanel option(s) {unknown}; options: "
                              f"{sorted(INPUTS)} and data, models")
        running = bool(params.pop("running", False))
        pn.custom.AnyWidgetComponent.__init__(self, **params)
        self._models = dict(models or {})
        self._start(data)
        self.param.watch(self._on_events, list(INPUTS))
        if running:
            self.start()

    def _on_events(self: Any, *events: Any) -> None:
        for event in events:
            self._changed(event.name, event.old, event.new)

    def _get(self: Any, name: str) -> Any:
        return getattr(self, name)

    def _set(self: Any, values: Mapping[str, Any]) -> None:
        rest = {k: v for k, v in values.items() if k != "version"}
        if rest:
            self.param.update(**rest)
        if "version" in values:
            self.version = values["version"]

    namespace.update(__init__=__init__, _on_events=_on_events, _get=_get, _set=_set)
    return type("SymmetryPanel", (pn.custom.AnyWidgetComponent, SymmetryController),
                namespace)


def symmetry_app(**options: Any) -> Any:
    """A Panel layout holding one symmetry dashboard (``options`` as for
    :class:`~labkit.widgets.SymmetryDashboard`)."""
    import panel as pn

    dashboard = symmetry_panel_class()(sizing_mode="stretch_width", **options)
    header = pn.pane.Markdown(
        "## labkit · symmetry discovery\nPick a data set and press ▶ start: LieGAN learns "
        "a generator on the server while the heatmaps, traces and orbit follow it.")
    return pn.Column(header, dashboard, sizing_mode="stretch_width")


def serve_symmetry(*, port: int = 5006, address: str = "127.0.0.1", show: bool = False,
                   **options: Any) -> None:
    """Serve :func:`symmetry_app` (one dashboard per browser session) until interrupted."""
    import panel as pn

    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"port must be an int in [0, 65535], got {port!r}")
    origins = [f"{address}:{port}", f"localhost:{port}"]
    pn.serve({"symmetry": lambda: symmetry_app(**options)}, port=port, address=address,
             show=show, websocket_origin=origins, title="labkit symmetry")
