"""Chaotic dynamical systems: vector fields with cited parameters, divergence of neighbours."""

from labkit.dynamics._divergence import log_separation, separation_rate
from labkit.dynamics._systems import lorenz, system_info

__all__ = ["log_separation", "lorenz", "separation_rate", "system_info"]
