"""Python side of labkit's views: plotly figures and (browser side in ``widgets/``) widgets.

This is the only layer of labkit that imports UI libraries.
"""

from labkit.widgets._assets import widget_asset, widget_module, widget_style
from labkit.widgets._attractor import AttractorViewer
from labkit.widgets._attractor_data import (
    AttractorData,
    OrbitData,
    SpectrumData,
    attractor_view,
    orbit_view,
    parameter_specs,
    spectrum_view,
)
from labkit.widgets._crystal import CrystalViewer, crystal_app
from labkit.widgets._crystal_data import Crystal, CrystalTrajectory, as_crystal, as_trajectory
from labkit.widgets._crystal_plots import (
    crystal_figure,
    crystal_grid_figure,
    crystal_trajectory_figure,
)
from labkit.widgets._csp_plots import csp_benchmark_figure, training_figure
from labkit.widgets._plots import (
    attractor_figure,
    gallery_figure,
    growth_figure,
    orbit_figure,
    spectrum_figure,
    trajectories_figure,
)
from labkit.widgets._reconstruction_monitor import ReconstructionMonitor, free_run
from labkit.widgets._reconstruction_plots import (
    reconstruction_figure,
    symbolic_code_figure,
    training_monitor_figure,
)
from labkit.widgets._series_view import series_view
from labkit.widgets._symmetry import SymmetryDashboard
from labkit.widgets._symmetry_panel import symmetry_app
from labkit.widgets._symmetry_plots import discovery_figure, discovery_table_figure
from labkit.widgets._table_plots import disagreement_table_figure, invariants_scatter_figure

__all__ = [
    "AttractorData",
    "AttractorViewer",
    "Crystal",
    "CrystalTrajectory",
    "CrystalViewer",
    "OrbitData",
    "ReconstructionMonitor",
    "SpectrumData",
    "SymmetryDashboard",
    "attractor_figure",
    "attractor_view",
    "as_crystal",
    "as_trajectory",
    "crystal_app",
    "crystal_figure",
    "crystal_grid_figure",
    "crystal_trajectory_figure",
    "csp_benchmark_figure",
    "disagreement_table_figure",
    "discovery_figure",
    "discovery_table_figure",
    "gallery_figure",
    "free_run",
    "growth_figure",
    "invariants_scatter_figure",
    "orbit_figure",
    "orbit_view",
    "parameter_specs",
    "reconstruction_figure",
    "series_view",
    "spectrum_figure",
    "spectrum_view",
    "symbolic_code_figure",
    "symmetry_app",
    "trajectories_figure",
    "training_figure",
    "training_monitor_figure",
    "widget_asset",
    "widget_module",
    "widget_style",
]
