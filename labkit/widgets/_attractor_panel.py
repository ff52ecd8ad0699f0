"""The attractor viewer as a Panel app (``labkit serve attractors``).

The browser side is the same ES module as the Jupyter widget (``widget_module("attractor")``),
run by Panel's :class:`panel.custom.AnyWidgetComponent`, whose model adapter offers
anywidget's ``get``/``set``/``save_changes``/``on`` API; the behaviour is the same
:class:`~labkit.widgets._attractor.AttractorController`. Panel is imported only when an
app is built.
"""

from __future__ import annotations

import functools
from typing import Any

from labkit.errors import ConfigError
from labkit.widgets._attractor import (
    INPUTS,
    OUTPUTS,
    PROTOCOL,
    SYSTEM_OPTIONS,
    AttractorController,
    new_uid,
    split_options,
    viewer_system,
)
from labkit.widgets._toolkits import PANEL_LAYOUT, panel_component, serve_app

__all__ = ["attractor_app", "attractor_panel_class", "serve_attractors"]


@functools.cache
def attractor_panel_class() -> type:
    """The Panel component class (built on first use, so importing labkit never imports
    Panel)."""
    import panel as pn

    def __init__(self: Any, **params: Any) -> None:
        options, _ = split_options(params, series=None)
        unknown = sorted(set(params) - set(INPUTS) - PANEL_LAYOUT)
        if unknown:
            raise ConfigError(f"unknown AttractorPanel option(s) {unknown}; options: "
                              f"{sorted(INPUTS)}, and for a callable system "
                              f"{list(SYSTEM_OPTIONS)}")
        name, own = viewer_system(params.get("system", INPUTS["system"]),
                                  parameters=params.get("parameters"), **options)
        params["system"] = name
        pn.custom.AnyWidgetComponent.__init__(self, uid=new_uid(), **params)
        self._own = {name: own} if own is not None else {}
        self._start()
        self.param.watch(self._on_events, [*INPUTS, *PROTOCOL])

    return panel_component(
        "AttractorPanel", doc="AttractorViewer as a Panel component (same ES module and "
        "behaviour).", module=__name__, asset="attractor", controller=AttractorController,
        defaults={**INPUTS, **PROTOCOL, **OUTPUTS}, init=__init__)


def attractor_app(**options: Any) -> Any:
    """A Panel layout holding one attractor viewer (``options`` as for
    :class:`~labkit.widgets.AttractorViewer`: ``system`` may be a user's system too)."""
    import panel as pn

    viewer = attractor_panel_class()(sizing_mode="stretch_width", **options)
    header = pn.pane.Markdown(
        "## labkit · attractors\nEvery flow and map of the catalogue: pick a system, move a "
        "parameter, and the trajectories go on from where they are with the new value; "
        "step and reset them, restart from new initial conditions, click the Poincare "
        "section to seed trajectories there, drag over the orbit diagram to zoom. Drag "
        "the picture to rotate, scroll to zoom.")
    return pn.Column(header, viewer, sizing_mode="stretch_width")


def serve_attractors(*, port: int = 5006, address: str = "127.0.0.1", show: bool = False,
                     **options: Any) -> None:
    """Serve :func:`attractor_app` (one viewer per browser session) until interrupted."""
    serve_app("attractors", lambda: attractor_app(**options), port=port, address=address,
              show=show, title="labkit attractors")
