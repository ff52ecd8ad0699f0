"""The catalogue of chaotic systems and their invariants.

Every dysts flow and map (with labkit's cited overrides) as a batched torch vector field
(:func:`get_system`), delay equations, the divergence of neighbours, Lyapunov spectra
(flows and maps), Poincare sections, orbit diagrams, power spectra and correlation
dimensions, and the whole catalogue's invariants table (recomputed, converged, compared
with dysts'). ``labkit table`` regenerates the tables.

Privacy: modules whose names start with ``_`` are private; the public names are those
listed here (and re-exported by :mod:`labkit.dynamics`).
"""


from labkit.dynamics.catalogue._catalogue import System, get_system, list_systems
from labkit.dynamics.catalogue._compare import Comparison, ComparisonRow, compare_with_dysts
from labkit.dynamics.catalogue._converge import (
    ConvergedRow,
    ConvergedTable,
    ConvergenceSettings,
    build_converged_table,
    converge_spectrum,
    converged_table,
)
from labkit.dynamics.catalogue._custom import custom_system
from labkit.dynamics.catalogue._delay import integrate_delay
from labkit.dynamics.catalogue._divergence import log_separation, separation_rate
from labkit.dynamics.catalogue._invariants import (
    OrbitDiagram,
    PoincareSection,
    correlation_dimension,
    correlation_sum,
    local_maxima,
    orbit_diagram,
    poincare_section,
    power_spectrum,
)
from labkit.dynamics.catalogue._lorenz import lorenz
from labkit.dynamics.catalogue._lyapunov import (
    LyapunovResult,
    kaplan_yorke_dimension,
    lyapunov_spectrum,
)
from labkit.dynamics.catalogue._lyapunov_map import lyapunov_spectrum_map, max_lyapunov_exponent_map
from labkit.dynamics.catalogue._table import InvariantsRow, TableSettings, compute_invariants
from labkit.dynamics.catalogue._table_file import (
    InvariantsTable,
    build_invariants_table,
    invariants_table,
)

__all__ = ["Comparison", "ComparisonRow", "ConvergedRow", "ConvergedTable", "ConvergenceSettings", "InvariantsRow", "InvariantsTable", "LyapunovResult", "OrbitDiagram", "PoincareSection", "System", "TableSettings", "build_converged_table", "build_invariants_table", "compare_with_dysts", "compute_invariants", "converge_spectrum", "converged_table", "correlation_dimension", "correlation_sum", "custom_system", "get_system", "integrate_delay", "invariants_table", "kaplan_yorke_dimension", "list_systems", "local_maxima", "log_separation", "lorenz", "lyapunov_spectrum", "lyapunov_spectrum_map", "max_lyapunov_exponent_map", "orbit_diagram", "poincare_section", "power_spectrum", "separation_rate"]
