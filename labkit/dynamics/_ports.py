"""Hand ports of the flows whose dysts code cannot act on batched torch tensors.

These systems combine vector parameters with NumPy broadcasting rules that assume one
unbatched state. Each port keeps the equations of the cited system with the state on
the last axis and the vector parameters on a trailing axis; the tests compare every
port with dysts' own NumPy right-hand side at many states.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["PORTED"]

Params = Mapping[str, Any]


def _bickley_jet(t: torch.Tensor, y: torch.Tensor, p: Params) -> tuple[torch.Tensor, ...]:
    # State order (y, x, z): the meridional coordinate first, as in dysts' metadata.
    yy, x, z = y.unbind(-1)
    ell, eps, k, sigma, u = p["ell"], p["eps"], p["k"], p["sigma"], p["u"]
    sech2 = torch.cosh(yy / ell) ** -2
    phase = k * (x[..., None] - z[..., None] * sigma)  # [*batch, modes]
    dx = u * sech2 * (-1 - 2 * (torch.cos(phase) * eps).sum(-1) * torch.tanh(yy / ell))
    dy = ell * u * sech2 * (eps * k * torch.sin(phase)).sum(-1)
    return dy, dx, torch.full_like(x, float(p["omega"]))


def _interior_squirmer(t: torch.Tensor, y: torch.Tensor, p: Params) -> tuple[torch.Tensor, ...]:
    r, th, tt = y.unbind(-1)
    tau = p["tau"]
    phase = 0.5 + 0.5 * torch.tanh(tau * 20 * torch.sin(2 * torch.pi * tt / tau))
    a = p["a"] * phase[..., None]
    g = p["g"] * (1 - phase[..., None])
    n = torch.arange(1, a.shape[-1] + 1, dtype=y.dtype, device=y.device)
    rr, tth = r[..., None], th[..., None]
    sin, cos, rn = torch.sin(tth * n), torch.cos(tth * n), rr**n
    vr = (g * cos + a * sin) * n * rn * (rr**2 - 1) / rr
    vth = (2 * rr + (rr**2 - 1) * n / rr) * (a * cos - g * sin) * rn
    return vr.sum(-1), vth.sum(-1) / r, torch.ones_like(r)


def _macarthur(t: torch.Tensor, y: torch.Tensor, p: Params) -> torch.Tensor:
    # Five species on five resources: Liebig's law of the minimum (Huisman & Weissing 1999).
    c, k, s = p["c"], p["k"], p["s"]
    n_species = s.shape[-1]
    nn, rr = y[..., :n_species], y[..., n_species:]
    uptake = p["r"] * rr[..., :, None] / (k + rr[..., :, None])  # [*batch, resource, species]
    mu = uptake.min(dim=-2).values
    dn = nn * (mu - p["m"])
    dr = p["d"] * (s - rr) - (mu * nn) @ c.transpose(-1, -2)
    return torch.cat([dn, dr], dim=-1).movedim(-1, 0)


#: name -> f(t, y, params) returning components or a ``[state, *batch]`` tensor.
PORTED = {
    "BickleyJet": _bickley_jet,
    "InteriorSquirmer": _interior_squirmer,
    "MacArthur": _macarthur,
}
