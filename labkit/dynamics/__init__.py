"""Chaotic dynamical systems: the catalogue of flows as batched torch vector fields,
cited parameters and reference invariants, and the divergence of neighbours."""

from labkit.dynamics._catalogue import System, get_system, list_systems
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

__all__ = [
    "LyapunovResult",
    "OrbitDiagram",
    "PoincareSection",
    "System",
    "correlation_dimension",
    "correlation_sum",
    "get_system",
    "integrate_delay",
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
