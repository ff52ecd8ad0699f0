"""Hand ports of the systems whose dysts code cannot act on batched torch tensors.

Three flows combine vector parameters with NumPy broadcasting rules that assume one
unbatched state; BlinkingVortexMap solves a scalar equation per point with scipy's
``fsolve``. Each port keeps dysts' equations with the state on the last axis and the
vector parameters on a trailing axis; the tests compare every port with dysts' own NumPy
code at many states.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["KEPLER_MAX_ITERATIONS", "PORTED", "solve_kepler"]

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


#: Iterations allowed to the safeguarded Newton solve of Kepler's equation. Newton
#: converges in a handful; were every step a bisection, 100 halvings of the initial
#: bracket (width <= 2) would still reach rounding.
KEPLER_MAX_ITERATIONS = 100


def solve_kepler(c: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    r"""The root :math:`q` of Kepler's equation :math:`q - e \sin q = c`, elementwise.

    For :math:`0 \le e < 1` the left side increases strictly, so the root is unique and
    lies in :math:`[c - e, c + e]`. Newton's method runs inside that bracket (a step that
    leaves it is replaced by bisection) until the step is below four units of rounding,
    on detached inputs; a last Newton step on the inputs themselves then gives, by the
    implicit function theorem, exact first derivatives
    :math:`\partial q = (\partial c + \sin q \, \partial e) / (1 - e \cos q)` to both
    forward- and reverse-mode autograd.

    Args:
        c, e: tensors broadcasting together; ``e`` in ``[0, 1)``.

    Returns:
        ``q``, of the broadcast shape.
    """
    c0, e0 = torch.broadcast_tensors(c.detach(), e.detach())
    lo, hi, q = c0 - e0, c0 + e0, c0.clone()
    tol = 4 * torch.finfo(q.dtype).eps
    for _ in range(KEPLER_MAX_ITERATIONS):
        f = q - e0 * torch.sin(q) - c0
        lo, hi = torch.where(f < 0, q, lo), torch.where(f > 0, q, hi)
        newton = q - f / (1 - e0 * torch.cos(q))
        step = torch.where((newton >= lo) & (newton <= hi), newton, (lo + hi) / 2) - q
        q = q + step
        if bool(((step.abs() <= tol * (1 + q.abs())) | ~torch.isfinite(q)).all()):
            break
    return q - (q - e * torch.sin(q) - c) / (1 - e0 * torch.cos(q))


def _blinking_vortex(t: torch.Tensor, y: torch.Tensor, p: Params) -> tuple[torch.Tensor, ...]:
    # dysts' BlinkingVortexMap: a particle at polar (r, theta) in a disc of radius a, stirred
    # by a point vortex at distance b from the centre (its image sits at a^2 / b), moves for
    # a time t along its streamline, the Apollonius circle on which
    # lambda = |z - b| / |z - a^2 / b| is constant (centre eta_c, radius rho). Its angle q on
    # that circle obeys Kepler's equation. dysts' _param_update flips self.b after each
    # call, but its rhs passes the unchanged param_list, so b keeps its value: as here.
    r, theta = y.unbind(-1)
    a, b, gamma, duration = p["a"], p["b"], p["gamma"], p["t"]
    image = a**2 / b
    cos = torch.cos(theta)
    lam2 = (b**2 + r**2 - 2 * b * r * cos) / (image**2 + r**2 - 2 * image * r * cos)
    lam = torch.sqrt(lam2)
    eta_c = (b - lam2 * image) / (1 - lam2)
    rho = (lam / (1 - lam2) * (image - b)).abs()
    start = torch.atan2(r * torch.sin(theta), r * cos - eta_c)
    e = 2 * lam / (1 + lam2)
    circuit = (2 * math.pi) ** 2 * rho**2 / gamma * (1 + lam2) / (1 - lam2)
    q = solve_kepler(start - e * torch.sin(start) + 2 * math.pi * duration / circuit, e)
    r_next = torch.sqrt(rho**2 + eta_c**2 + 2 * rho * eta_c * torch.cos(q))
    return r_next, torch.atan2(rho * torch.sin(q), eta_c + rho * torch.cos(q))


#: name -> f(t, y, params) returning components or a ``[state, *batch]`` tensor; for a map,
#: the next state (``t`` unused).
PORTED = {
    "BickleyJet": _bickley_jet,
    "BlinkingVortexMap": _blinking_vortex,
    "InteriorSquirmer": _interior_squirmer,
    "MacArthur": _macarthur,
}
