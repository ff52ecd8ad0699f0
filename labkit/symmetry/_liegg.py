"""LieGG: the symmetries a trained network has learned, in closed form (Moskalev, Sepliarskaia,
Sosnovik, Smeulders, "LieGG: Studying Learned Lie Group Generators", NeurIPS 2022).

A network :math:`f` is invariant under the one-parameter group :math:`e^{tA}` exactly
when its derivative along the flow vanishes on the data:

.. math::
    \\frac{d}{dt} f(e^{tA} x)\\Big|_{t=0} = \\nabla f(x)^\\top\\, \\rho(A)\\, x = 0 .

This is linear in :math:`A = \\sum_m a_m B_m` (``B`` a basis of candidate generators,
:math:`\\mathfrak{gl}(n)` by default), so stacking one row
:math:`E_{x,m} = \\nabla f(x)^\\top \\rho(B_m) x` per sample (and per output) gives the
*polarization matrix* ``E``. Its (near) null space holds the learned symmetries: the right
singular vectors of its smallest singular values. Rows are normalised so each sample
counts once. The number of generators is read off the largest gap in
:math:`\\log \\sigma` when not given.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from labkit.core.config import check_int, check_positive
from labkit.core.rng import make_generator
from labkit.core.train import History, fit
from labkit.errors import ConfigError
from labkit.symmetry._algebra import LieAlgebra, gl
from labkit.symmetry._data import SymmetryData
from labkit.symmetry._result import DiscoveryResult, judge

__all__ = ["fit_regressor", "liegg", "polarization_matrix"]


def fit_regressor(
    data: SymmetryData,
    *,
    hidden: int = 64,
    depth: int = 2,
    steps: int = 1500,
    lr: float = 3e-3,
    seed: int = 0,
) -> nn.Module:
    """A small MLP ``x -> y`` (SiLU, float64) fitted to ``data`` by full-batch Adam through
    :func:`labkit.core.train.fit`, for :func:`liegg`. Inputs and targets are standardised
    inside the returned module, so it maps raw ``x`` to raw ``y``.

    Raises:
        ConfigError: ``data`` has no targets ``y``.
    """
    if not isinstance(data, SymmetryData):
        raise ConfigError(f"data must be a SymmetryData, got {type(data).__name__}")
    if data.y is None:
        raise ConfigError(f"fit_regressor needs targets y, but data {data.name!r} has y=None")
    check_int("hidden", hidden)
    check_int("depth", depth)
    check_int("steps", steps)
    check_positive("lr", lr)
    gen = make_generator(seed)
    x, y = data.x, data.y
    layers: list[nn.Module] = []
    width = x.shape[1]
    for _ in range(depth):
        layers += [_linear(width, hidden, gen), nn.SiLU()]
        width = hidden
    layers.append(_linear(width, y.shape[1], gen))
    model = _Standardised(nn.Sequential(*layers), x, y)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    ys = (y - model.y_mean) / model.y_std

    def step(i: int) -> dict[str, float]:
        opt.zero_grad()
        loss = (model.net((x - model.x_mean) / model.x_std) - ys).square().mean()
        loss.backward()
        opt.step()
        sched.step()
        return {"loss": loss.item()}

    fit(step, steps)
    return model.eval()


def _linear(fan_in: int, fan_out: int, gen: torch.Generator) -> nn.Linear:
    layer = nn.utils.skip_init(nn.Linear, fan_in, fan_out, dtype=torch.float64)
    bound = fan_in ** -0.5
    with torch.no_grad():
        layer.weight.copy_((torch.rand(fan_out, fan_in, generator=gen, dtype=torch.float64) * 2 - 1) * bound)
        layer.bias.copy_((torch.rand(fan_out, generator=gen, dtype=torch.float64) * 2 - 1) * bound)
    return layer


class _Standardised(nn.Module):
    def __init__(self, net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("x_mean", x.mean(0))
        self.register_buffer("x_std", x.std(0).clamp_min(1e-12))
        self.register_buffer("y_mean", y.mean(0))
        self.register_buffer("y_std", y.std(0).clamp_min(1e-12))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.x_mean) / self.x_std) * self.y_std + self.y_mean


def polarization_matrix(model: nn.Module, data: SymmetryData, basis: torch.Tensor,
                        *, max_samples: int = 2000) -> torch.Tensor:
    """Rows :math:`\\nabla f_j(x)^\\top \\rho(B_m) x` over samples and outputs, each row
    normalised to unit length, ``[N * outputs, m]``."""
    x = data.x[:max_samples].clone().requires_grad_(True)
    param = next(iter(model.parameters()), None)
    dtype = param.dtype if param is not None else torch.float64
    out = model(x.to(dtype))
    out = out[:, None] if out.ndim == 1 else out
    if out.ndim != 2 or out.shape[0] != x.shape[0]:
        raise ConfigError(f"model must map [N, {data.x.shape[1]}] to [N] or [N, m], got {tuple(out.shape)}")
    moved = torch.stack([data.rep.act(b, data.x[:max_samples]) for b in basis], -1)  # [N, D, m]
    rows = []
    for j in range(out.shape[1]):
        (grad,) = torch.autograd.grad(out[:, j].sum(), x, retain_graph=j + 1 < out.shape[1])
        rows.append(torch.einsum("nd,ndm->nm", grad.to(torch.float64), moved))
    e = torch.cat(rows)
    norms = e.norm(dim=1, keepdim=True)
    return e[norms[:, 0] > 0] / norms[norms[:, 0] > 0]


def liegg(
    model: nn.Module,
    data: SymmetryData,
    *,
    n_generators: int | None = None,
    algebra: LieAlgebra | None = None,
    seed: int = 0,
) -> DiscoveryResult:
    """Generators a trained ``model`` (``x -> y``) is invariant under, from the null space
    of its polarization matrix (SVD).

    Args:
        model: a trained network, e.g. from :func:`fit_regressor`.
        data: the samples the model was trained on.
        n_generators: how many generators to return; by default, the number below the
            largest gap :math:`\\log\\sigma_{k+1} - \\log\\sigma_k` of the ascending
            singular values (recorded as ``scores["gap"]`` and ``scores["k"]``).
        algebra: candidate generators (default :math:`\\mathfrak{gl}(n)`, all matrices).
        seed: for the two-sample tests.

    Returns:
        A :class:`~labkit.symmetry.DiscoveryResult` with ``singular_values`` (ascending)
        and unit-norm generators.
    """
    began = time.process_time()
    if not isinstance(data, SymmetryData):
        raise ConfigError(f"data must be a SymmetryData, got {type(data).__name__}")
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    algebra = gl(data.n) if algebra is None else algebra
    if not isinstance(algebra, LieAlgebra) or algebra.n != data.n:
        raise ConfigError(f"algebra must be a LieAlgebra of {data.n} x {data.n} matrices, got {algebra!r}")
    basis = algebra.basis.to(torch.float64)
    e = polarization_matrix(model, data, basis).detach()
    _, s, vh = torch.linalg.svd(e, full_matrices=False)
    order = torch.argsort(s)
    s, vh = s[order], vh[order]
    logs = torch.log(s.clamp_min(1e-300))
    gaps = logs[1:] - logs[:-1]
    if n_generators is None:
        k = int(torch.argmax(gaps)) + 1 if gaps.numel() else 1
    else:
        check_int("n_generators", n_generators)
        if n_generators > basis.shape[0]:
            raise ConfigError(f"n_generators must be <= {basis.shape[0]} (the algebra's dimension), "
                              f"got {n_generators}")
        k = n_generators
    gens = torch.einsum("km,mij->kij", vh[:k], basis)
    gens = gens / gens.flatten(1).norm(dim=1)[:, None, None]
    gap = float(gaps[k - 1]) if k - 1 < gaps.numel() else float("nan")
    return judge(data, gens, method="liegg", history=History(), coeff_scale=1.0,
                 singular_values=s, seconds=time.process_time() - began, seed=seed,
                 extra_scores={"k": float(k), "gap": gap})
