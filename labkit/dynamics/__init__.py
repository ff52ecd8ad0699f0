"""Chaotic dynamical systems: the catalogue of flows as batched torch vector fields,
cited parameters and reference invariants, the divergence of neighbours, and the
whole catalogue's recomputed invariants table compared with dysts'."""

from labkit.dynamics._catalogue import System, get_system, list_systems
from labkit.dynamics._compare import Comparison, ComparisonRow, compare_with_dysts
from labkit.dynamics._delay import integrate_delay, list_delay_systems
from labkit.dynamics._divergence import log_separation, separation_rate
from labkit.dynamics._invariants import (
    OrbitDiagram,
    PoincareSection,
    correlation_dimension,
    correlation_sum,
    local_maxima,
    orbit_diagram,
    poincare_section,
    power_spectrum,
)
from labkit.dynamics._lyapunov import LyapunovResult, kaplan_yorke_dimension, lyapunov_spectrum
from labkit.dynamics._systems import lorenz, system_info
from labkit.dynamics._table import InvariantsRow, TableSettings, compute_invariants
from labkit.dynamics._table_file import InvariantsTable, build_invariants_table, invariants_table

__all__ = [
    "Comparison",
    "ComparisonRow",
    "InvariantsRow",
    "InvariantsTable",
    "LyapunovResult",
    "OrbitDiagram",
    "PoincareSection",
    "System",
    "TableSettings",
    "build_invariants_table",
    "compare_with_dysts",
    "compute_invariants",
    "correlation_dimension",
    "correlation_sum",
    "get_system",
    "integrate_delay",
    "invariants_table",
    "kaplan_yorke_dimension",
    "list_delay_systems",
    "list_systems",
    "local_maxima",
    "log_separation",
    "lorenz",
    "lyapunov_spectrum",
    "orbit_diagram",
    "poincare_section",
    "power_spectrum",
    "separation_rate",
    "system_info",
]
