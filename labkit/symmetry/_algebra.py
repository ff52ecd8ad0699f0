"""Lie algebras as bases of matrices, their exponentials, and the forms they preserve.

A :class:`LieAlgebra` is a basis ``L`` of shape ``[k, n, n]`` (``k`` generators of
``n x n`` matrices). Group elements near the identity are
:math:`g = \\exp(\\sum_i w_i L_i)`. The constructors cover the classical algebras
used in symmetry discovery: ``so(n)``, ``so(1,3)``, ``sl(n)``, ``gl(n)``,
``sp(2n)``, uniform scaling and translations (the latter in homogeneous coordinates,
``(n+1) x (n+1)``).
"""

from __future__ import annotations

import dataclasses
import itertools

import torch
from jaxtyping import Float
from torch import Tensor

from labkit.core.config import check_int, check_positive
from labkit.core.rng import make_generator
from labkit.core.shapes import Generators, GroupElements
from labkit.errors import ConfigError

__all__ = [
    "LieAlgebra",
    "gl",
    "invariant_metric",
    "lorentz",
    "scaling",
    "sl",
    "so",
    "sp",
    "structure_constants",
    "translations",
]


@dataclasses.dataclass(frozen=True, eq=False)
class LieAlgebra:
    """A named basis of a matrix Lie algebra.

    Attributes:
        name: e.g. ``"so(3)"``.
        basis: ``[k, n, n]`` float64 tensor of generators.
        homogeneous: True when the matrices act on homogeneous coordinates
            ``(x, 1)`` (translations, affine maps); the acting dimension is then ``n - 1``.
    """

    name: str
    basis: Generators
    homogeneous: bool = False

    def __post_init__(self) -> None:
        b = self.basis
        if not isinstance(b, torch.Tensor) or b.ndim != 3 or b.shape[1] != b.shape[2]:
            shape = tuple(b.shape) if isinstance(b, torch.Tensor) else type(b).__name__
            raise ConfigError(f"basis must be a tensor [k, n, n], got {shape}")

    @property
    def dim(self) -> int:
        """Number of generators ``k``."""
        return self.basis.shape[0]

    @property
    def n(self) -> int:
        """Matrix size."""
        return self.basis.shape[1]

    def element(self, coeffs: Float[Tensor, "*batch k"]) -> Float[Tensor, "*batch n n"]:
        """:math:`\\sum_i w_i L_i` for coefficients ``[*batch, k]`` -> ``[*batch, n, n]``."""
        coeffs = torch.as_tensor(coeffs)
        if coeffs.shape[-1:] != (self.dim,):
            raise ConfigError(
                f"coeffs must have last axis {self.dim} (one per generator of {self.name}), "
                f"got shape {tuple(coeffs.shape)}"
            )
        basis = self.basis.to(coeffs.device, coeffs.dtype)
        return torch.einsum("...k,kij->...ij", coeffs, basis)

    def exp(self, coeffs: Float[Tensor, "*batch k"]) -> Float[Tensor, "*batch n n"]:
        """Group elements :math:`\\exp(\\sum_i w_i L_i)`, ``[*batch, n, n]``."""
        return torch.linalg.matrix_exp(self.element(coeffs))

    def sample(
        self,
        n: int,
        *,
        scale: float = 1.0,
        seed: int | torch.Generator | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> GroupElements:
        """``n`` elements :math:`\\exp(\\sum_i w_i L_i)` with :math:`w_i \\sim N(0, scale^2)`."""
        check_int("n", n)
        check_positive("scale", scale)
        gen = make_generator(seed)
        w = torch.randn(n, self.dim, generator=gen, dtype=torch.float64) * scale
        return self.exp(w).to(dtype)

    def closure_error(self) -> float:
        """Largest component of ``[L_i, L_j]`` outside the span of the basis (0 for an algebra)."""
        _, residual = _structure(self.basis)
        return float(residual)

    def __repr__(self) -> str:
        return f"LieAlgebra({self.name!r}, dim={self.dim}, n={self.n})"


def _unit(n: int, i: int, j: int) -> torch.Tensor:
    e = torch.zeros(n, n, dtype=torch.float64)
    e[i, j] = 1.0
    return e


def _check_n(n: int, least: int = 1) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < least:
        raise ConfigError(f"n must be an int >= {least}, got {n!r}")


def so(n: int) -> LieAlgebra:
    """so(n): antisymmetric ``n x n`` matrices, basis :math:`E_{ij} - E_{ji}` for ``i < j``.

    For ``n = 2`` the single generator is ``[[0, 1], [-1, 0]]``, whose exponential
    rotates clockwise by its coefficient (in radians).
    """
    _check_n(n, 2)
    basis = [_unit(n, i, j) - _unit(n, j, i) for i, j in itertools.combinations(range(n), 2)]
    return LieAlgebra(f"so({n})", torch.stack(basis))


def lorentz() -> LieAlgebra:
    """so(1,3): generators preserving :math:`\\eta = \\mathrm{diag}(1,-1,-1,-1)`.

    Three boosts (``E_{0i} + E_{i0}``) then three rotations (``E_{ij} - E_{ji}``).
    """
    boosts = [_unit(4, 0, i) + _unit(4, i, 0) for i in (1, 2, 3)]
    rots = [_unit(4, i, j) - _unit(4, j, i) for i, j in ((1, 2), (1, 3), (2, 3))]
    return LieAlgebra("so(1,3)", torch.stack(boosts + rots))


def gl(n: int) -> LieAlgebra:
    """gl(n): all ``n x n`` matrices, basis :math:`E_{ij}`."""
    _check_n(n)
    return LieAlgebra(f"gl({n})", torch.stack([_unit(n, i, j) for i in range(n) for j in range(n)]))


def sl(n: int) -> LieAlgebra:
    """sl(n): traceless matrices; off-diagonal :math:`E_{ij}` and :math:`E_{ii} - E_{i+1,i+1}`."""
    _check_n(n, 2)
    off = [_unit(n, i, j) for i in range(n) for j in range(n) if i != j]
    diag = [_unit(n, i, i) - _unit(n, i + 1, i + 1) for i in range(n - 1)]
    return LieAlgebra(f"sl({n})", torch.stack(off + diag))


def sp(two_n: int) -> LieAlgebra:
    """sp(2n): matrices ``X`` with :math:`X^T J + J X = 0`, :math:`J = [[0, I], [-I, 0]]`.

    Basis: ``[[A, 0], [0, -A^T]]`` for ``A = E_ij``, ``[[0, B], [0, 0]]`` and
    ``[[0, 0], [B, 0]]`` for symmetric ``B`` (``n (2n + 1)`` generators).
    """
    if not isinstance(two_n, int) or two_n < 2 or two_n % 2:
        raise ConfigError(f"sp needs an even matrix size >= 2, got {two_n!r}")
    n = two_n // 2
    out = []
    for i in range(n):
        for j in range(n):
            x = torch.zeros(two_n, two_n, dtype=torch.float64)
            x[:n, :n] = _unit(n, i, j)
            x[n:, n:] = -_unit(n, i, j).T
            out.append(x)
    for i in range(n):
        for j in range(i, n):
            sym = _unit(n, i, j) + _unit(n, j, i) if i != j else _unit(n, i, i)
            upper = torch.zeros(two_n, two_n, dtype=torch.float64)
            upper[:n, n:] = sym
            lower = torch.zeros(two_n, two_n, dtype=torch.float64)
            lower[n:, :n] = sym
            out += [upper, lower]
    return LieAlgebra(f"sp({two_n})", torch.stack(out))


def scaling(n: int) -> LieAlgebra:
    """Uniform scaling of :math:`R^n`: the single generator is the identity."""
    _check_n(n)
    return LieAlgebra(f"scaling({n})", torch.eye(n, dtype=torch.float64)[None])


def translations(n: int) -> LieAlgebra:
    """Translations of :math:`R^n` in homogeneous coordinates: ``(n+1) x (n+1)`` generators
    :math:`E_{i,n}`, so :math:`\\exp(\\sum_i t_i L_i)` maps ``(x, 1)`` to ``(x + t, 1)``."""
    _check_n(n)
    basis = torch.stack([_unit(n + 1, i, n) for i in range(n)])
    return LieAlgebra(f"translations({n})", basis, homogeneous=True)


def _structure(basis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    k = basis.shape[0]
    flat = basis.reshape(k, -1).T  # [n*n, k]
    comm = torch.einsum("aij,bjk->abik", basis, basis)
    comm = comm - comm.transpose(0, 1)
    target = comm.reshape(k * k, -1).T  # [n*n, k*k]
    coef = torch.linalg.lstsq(flat, target).solution  # [k, k*k]
    residual = (flat @ coef - target).abs().max() if k else torch.tensor(0.0)
    return coef.T.reshape(k, k, k), residual


def structure_constants(algebra: LieAlgebra) -> Float[Tensor, "k k k"]:
    """:math:`c_{ij}^k` with :math:`[L_i, L_j] = \\sum_k c_{ij}^k L_k`, shape ``[k, k, k]``.

    Raises:
        ConfigError: when the basis is not closed under the commutator (residual > 1e-8).
    """
    coef, residual = _structure(algebra.basis.to(torch.float64))
    if residual > 1e-8:
        raise ConfigError(
            f"{algebra.name} is not closed under the commutator: residual {float(residual):.3g}"
        )
    return coef


def invariant_metric(generators: Float[Tensor, "*k n n"]) -> tuple[Float[Tensor, "n n"], float]:
    """The symmetric bilinear form a set of generators preserves.

    Solves :math:`L_i^T M + M L_i = 0` for all ``i`` over symmetric ``M`` (least squares,
    smallest right singular vector), so a learned Lorentz algebra gives
    :math:`M \\propto \\mathrm{diag}(1,-1,-1,-1)`.

    Args:
        generators: ``[k, n, n]`` (or one ``[n, n]``).

    Returns:
        ``(M, residual)``: ``M`` with unit Frobenius norm, sign chosen so that its first
        entry (row-major) of largest magnitude is positive, and the relative residual
        :math:`\\sigma_{min} / \\sigma_{max}` of the linear system (0 for an exact solution).
    """
    gens = torch.as_tensor(generators, dtype=torch.float64)
    if gens.ndim == 2:
        gens = gens[None]
    if gens.ndim != 3 or gens.shape[1] != gens.shape[2]:
        raise ConfigError(f"generators must be [k, n, n] or [n, n], got {tuple(gens.shape)}")
    n = gens.shape[-1]
    iu = torch.triu_indices(n, n)
    sym_basis = []
    for i, j in iu.T.tolist():
        m = _unit(n, i, j)
        sym_basis.append(m + m.T if i != j else m)
    sym = torch.stack(sym_basis)  # [p, n, n]
    # columns: the map M -> (L_i^T M + M L_i)_i applied to each symmetric basis matrix
    cols = torch.einsum("kji,pjl->pkil", gens, sym) + torch.einsum("pij,kjl->pkil", sym, gens)
    a = cols.reshape(sym.shape[0], -1).T
    _, s, vh = torch.linalg.svd(a, full_matrices=True)
    coef = vh[-1]
    m = torch.einsum("p,pij->ij", coef, sym)
    m = m / torch.linalg.matrix_norm(m)
    # the first entry of (nearly) largest magnitude, in row-major order: among tied
    # entries (Minkowski's +-1/2), argmax alone would pick by rounding noise, which
    # differs between machines
    flat = m.flatten()
    big = flat.abs() >= flat.abs().max() * (1 - 1e-9)
    if flat[int(big.nonzero()[0])] < 0:
        m = -m
    smax = float(s.max()) if s.numel() else 0.0
    smin = float(s[-1]) if s.numel() >= sym.shape[0] else 0.0
    return m, (smin / smax if smax > 0 else 0.0)
