"""The attractor viewer as a Panel app (``labkit serve attractors``).

The browser side is the same ES module as the Jupyter widget (``widgets/attractor.js``),
run by Panel's :class:`panel.custom.AnyWidgetComponent`, whose model adapter offers
anywidget's ``get``/``set``/``save_changes``/``on`` API; the behaviour is the same
:class:`~labkit.widgets._attractor.AttractorController`. Panel is imported only when an
app is built.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from labkit.errors import ConfigError
from labkit.widgets._assets import widget_asset
from labkit.widgets._attractor import INPUTS, AttractorController, state_fields

__all__ = ["attractor_app", "attractor_panel_class", "serve_attractors"]


@functools.cache
def attractor_panel_class() -> type:
    """The Panel component class (built on first use, so importing labkit never imports
    Panel)."""
    import panel as pn
    import param

    namespace: dict[str, Any] = {
        "__doc__": "AttractorViewer as a Panel component (same ES module and behaviour).",
        "__module__": __name__,
        "_esm": widget_asset("attractor.js"),
        "_stylesheets": [widget_asset("attractor.css").read_text()],
    }
    namespace.update(state_fields((param.Boolean, param.Integer, param.Number, param.String,
                                   param.Bytes, param.Dict, param.List)))

    def __init__(self: Any, **params: Any) -> None:
        unknown = sorted(set(params) - set(INPUTS) - {"sizing_mode", "width", "height",
                                                       "min_height", "margin", "name"})
        if unknown:
            raise ConfigError(f"unknown AttractorPanel option(s) {unknown}; options: "
                              f"{sorted(INPUTS)}")
        pn.custom.AnyWidgetComponent.__init__(self, **params)
        self._start()
        self.param.watch(self._on_events, list(INPUTS))

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
    return type("AttractorPanel", (pn.custom.AnyWidgetComponent, AttractorController),
                namespace)


def attractor_app(**options: Any) -> Any:
    """A Panel layout holding one attractor viewer (``options`` as for
    :class:`~labkit.widgets.AttractorViewer`)."""
    import panel as pn

    viewer = attractor_panel_class()(sizing_mode="stretch_width", **options)
    header = pn.pane.Markdown(
        "## labkit · attractors\nEvery flow and map of the catalogue: pick a system, move a "
        "parameter, and the ensemble is re-integrated. Drag to rotate, scroll to zoom.")
    return pn.Column(header, viewer, sizing_mode="stretch_width")


def serve_attractors(*, port: int = 5006, address: str = "127.0.0.1", show: bool = False,
                     **options: Any) -> None:
    """Serve :func:`attractor_app` (one viewer per browser session) until interrupted."""
    import panel as pn

    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"port must be an int in [0, 65535], got {port!r}")
    origins = [f"{address}:{port}", f"localhost:{port}"]
    pn.serve({"attractors": lambda: attractor_app(**options)}, port=port, address=address,
             show=show, websocket_origin=origins, title="labkit attractors")
