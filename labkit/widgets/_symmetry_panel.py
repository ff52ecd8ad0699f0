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
from labkit.widgets._symmetry import DATASETS, INPUTS, OUTPUTS, SymmetryController
from labkit.widgets._toolkits import PANEL_LAYOUT, panel_component, serve_app

__all__ = ["serve_symmetry", "symmetry_app", "symmetry_panel_class"]

@functools.cache
def symmetry_panel_class() -> type:
    """The Panel component class (built on first use, so importing labkit never imports
    Panel)."""
    import panel as pn

    def __init__(self: Any, *, data: Any = None, models: Mapping[str, Any] | None = None,
                 **params: Any) -> None:
        unknown = sorted(set(params) - set(INPUTS) - PANEL_LAYOUT)
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

    return panel_component(
        "SymmetryPanel", doc="SymmetryDashboard as a Panel component (same ES module and "
        "behaviour).", module=__name__, asset="symmetry", controller=SymmetryController,
        defaults={**INPUTS, **OUTPUTS}, init=__init__)


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
    """Serve :func:`symmetry_app` (one dashboard per browser session) until interrupted.

    Raises:
        ConfigError: an unknown ``dataset`` (before the server starts).
    """
    if "dataset" in options and options["dataset"] not in DATASETS:
        raise ConfigError(f"unknown data set {options['dataset']!r}; choose one of "
                          f"{list(DATASETS)}")
    serve_app("symmetry", lambda: symmetry_app(**options), port=port, address=address,
              show=show, title="labkit symmetry")
