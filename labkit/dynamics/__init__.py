"""Chaotic dynamical systems: the catalogue of flows as batched torch vector fields,
cited parameters and reference invariants, and the divergence of neighbours."""

from labkit.dynamics._catalogue import System, get_system, list_systems
from labkit.dynamics._divergence import log_separation, separation_rate
from labkit.dynamics._systems import lorenz, system_info

__all__ = [
    "System",
    "get_system",
    "list_systems",
    "log_separation",
    "lorenz",
    "separation_rate",
    "system_info",
]
