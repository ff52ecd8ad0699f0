"""Python side of labkit's views: plotly figures and (browser side in ``widgets/``) widgets.

This is the only layer of labkit that imports UI libraries.
"""

from labkit.widgets._assets import widget_asset
from labkit.widgets._plots import growth_figure, spectrum_figure, trajectories_figure

__all__ = ["growth_figure", "spectrum_figure", "trajectories_figure", "widget_asset"]
