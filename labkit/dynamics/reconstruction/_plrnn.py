r"""Piecewise-linear recurrent networks for dynamical-systems reconstruction.

Two latent models, both piecewise-linear maps :math:`z_{t+1} = F(z_t)` of a latent state
:math:`z \in R^M`, batched over leading axes (states ``[*batch, M]``, trajectories
``[*batch, time, M]``):

* :class:`ShallowPLRNN` (shPLRNN; Hess, Monfared, Brenner, Durstewitz, "Generalized
  Teacher Forcing for Learning Chaotic Dynamics", ICML 2023), with a hidden layer of
  width :math:`L`

  .. math:: z_{t+1} = A z_t + W_1 \mathrm{relu}(W_2 z_t + h_2) + h_1,

  and its *clipped* variant, whose nonlinearity
  :math:`\mathrm{relu}(W_2 z + h_2) - \mathrm{relu}(W_2 z)` is bounded (by :math:`|h_2|`
  per unit), so that every orbit stays bounded whenever :math:`\max_i |a_i| < 1`.
* :class:`ALRNN` (almost-linear RNN; Brenner, Hemmer, Monfared, Durstewitz, "Almost-Linear
  RNNs Yield Highly Interpretable Symbolic Codes in Dynamical Systems Reconstruction",
  NeurIPS 2024): only the last :math:`P` of the :math:`M` units pass through a ReLU,

  .. math:: z_{t+1} = A z_t + W \Phi^*(z_t) + h, \qquad
            \Phi^*(z) = [z_1, \dots, z_{M-P}, \mathrm{relu}(z_{M-P+1}), \dots,
            \mathrm{relu}(z_M)],

  so the map has only :math:`2^P` linear subregions; the index of the subregion visited
  at each step is the model's *symbolic code* (:meth:`ALRNN.symbolic_code`).

``A`` is diagonal in both. Each model gives its analytic Jacobian, free-running
trajectories that raise :class:`~labkit.errors.DivergenceError` instead of returning
NaNs, and its fixed points and :math:`k`-cycles found exactly, region by region
(:meth:`PiecewiseLinearRNN.cycles`).

Observation models map latent states to data: :class:`IdentityObservation` (the first
:math:`N` latent units are the observations; these are the units teacher forcing
replaces) and :class:`AffineObservation` (:math:`x = B z + c`).
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import torch
from jaxtyping import Bool, Complex, Float, Int
from torch import Tensor, nn

from labkit.core.rng import make_generator, uniform
from labkit.core.shapes import Jacobians, MemberStates, States, TimeSeries
from labkit.errors import ConfigError, DivergenceError

__all__ = ["ALRNN", "AffineObservation", "IdentityObservation", "PeriodicOrbits",
           "PiecewiseLinearRNN", "ShallowPLRNN", "MAX_REGION_SEQUENCES"]

#: The most linear-subregion sequences (regions ** k for a k-cycle) that
#: :meth:`PiecewiseLinearRNN.cycles` enumerates before refusing: one batched linear solve
#: of size M per sequence (2^16 solves of a 20 x 20 system take about a second).
MAX_REGION_SEQUENCES = 2 ** 16

#: Two periodic points closer than this (in the latent state's units) are the same point,
#: and a pre-activation within this of zero counts as lying on a region border (either side).
ORBIT_TOLERANCE = 1e-8


def _normalised_positive_definite(m: int, gen: torch.Generator) -> torch.Tensor:
    """:math:`K = R^T R / M + I`, :math:`R` standard normal, divided by its largest
    eigenvalue (Talathi & Vartak 2016's RNN initialisation, used by the PLRNN family)."""
    r = torch.randn(m, m, generator=gen, dtype=torch.float64)
    k = r.T @ r / m + torch.eye(m, dtype=torch.float64)
    return k / torch.linalg.eigvalsh(k).abs().max()


@dataclasses.dataclass(frozen=True)
class PeriodicOrbits:
    """Fixed points (``period == 1``) or cycles of a piecewise-linear map.

    Attributes:
        period: :math:`k`.
        points: ``[n, k, M]`` float64, the :math:`k` points of each orbit in order
            (:math:`z_{i+1} = F(z_i)`, :math:`F(z_k) = z_1`).
        regions: ``[n, k]`` the linear subregion (index, see
            :meth:`PiecewiseLinearRNN.region`) of each point.
        eigenvalues: ``[n, M]`` complex, eigenvalues of the :math:`k`-step Jacobian
            :math:`J_{k} \\cdots J_{1}` along the orbit.
        stable: ``[n]`` bool, every eigenvalue inside the unit circle.
    """

    period: int
    points: Float[Tensor, "orbits period state"]
    regions: Int[Tensor, "orbits period"]
    eigenvalues: Complex[Tensor, "orbits state"]
    stable: Bool[Tensor, " orbits"]

    def __len__(self) -> int:
        return int(self.points.shape[0])


class PiecewiseLinearRNN(nn.Module):
    """Base of the piecewise-linear latent models.

    A subclass defines :meth:`forward` (one step), :meth:`jacobian`, the activation
    pattern of a state (:meth:`pattern`: one small integer per switching unit) and the
    affine map of each pattern (:meth:`_affine`); this base enumerates linear subregions
    for :meth:`cycles` and runs trajectories.
    """

    dim: int
    #: how many states each switching unit has (2 for a ReLU, 3 for a clipped ReLU).
    _states_per_unit: int = 2

    def jacobian(self, z: States) -> Jacobians:
        """The Jacobian of one step at ``z``, ``[*batch, M, M]``."""
        raise NotImplementedError(f"{type(self).__name__} has no jacobian")

    def step(self, z: States) -> States:
        """One step of the map, ``[*batch, M] -> [*batch, M]`` (same as calling the model)."""
        return self(z)

    def stacked_step(self, params: dict[str, torch.Tensor], z: MemberStates) -> MemberStates:
        """One step of K models with this one's structure and the parameters ``params``
        stacked on a leading axis (named as in :meth:`named_parameters`, buffers
        included, as :func:`torch.func.stack_module_state` gives them): ``z`` ``[K, B, M]``
        -> ``[K, B, M]``. Batched matrix products, the hot loop of training several
        models at once (``torch.func.vmap`` over :meth:`forward` costs ~7x more per call
        on a CPU); the tests check it against :meth:`forward`."""
        raise NotImplementedError(f"{type(self).__name__} has no stacked step")

    def _check(self, z: torch.Tensor) -> torch.Tensor:
        if not isinstance(z, torch.Tensor) or z.ndim < 1 or z.shape[-1] != self.dim:
            shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ConfigError(f"{type(self).__name__}: the state must be a tensor "
                              f"[*batch, {self.dim}], got {shape}")
        return z

    @property
    def n_switching(self) -> int:
        """Number of switching (ReLU) units that define the linear subregions."""
        raise NotImplementedError

    def pattern(self, z: States) -> Int[Tensor, "*batch switching"]:
        """The activation pattern ``[*batch, n_switching]`` (int64) of each state."""
        raise NotImplementedError

    def _affine(self, patterns: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(J, c)`` with ``F(z) = J z + c`` in each region: ``[R, M, M]``, ``[R, M]`` (float64)."""
        raise NotImplementedError

    def _pattern_ok(self, z: torch.Tensor, patterns: torch.Tensor) -> torch.Tensor:
        """Whether each state ``[R, M]`` lies in (the closure of) region ``patterns``."""
        raise NotImplementedError

    @property
    def n_regions(self) -> int:
        """Number of linear subregions (some may be empty)."""
        return self._states_per_unit ** self.n_switching

    def region(self, z: States) -> Int[Tensor, "*batch"]:
        """The index of the linear subregion of each state, ``[*batch]`` int64 in
        ``[0, n_regions)``: the activation pattern read as a number in base 2 (base 3 for
        the clipped shPLRNN), first switching unit least significant."""
        if self.n_regions > 2 ** 62:
            raise ConfigError(f"{type(self).__name__} has {self._states_per_unit}^"
                              f"{self.n_switching} regions: too many to number in int64; "
                              "use pattern() instead")
        p = self.pattern(z)
        base = self._states_per_unit ** torch.arange(p.shape[-1], device=p.device)
        return (p * base).sum(-1)

    def _all_patterns(self, cap: int) -> torch.Tensor:
        if self.n_regions > cap:
            raise ConfigError(
                f"{type(self).__name__} has {self._states_per_unit}^{self.n_switching} = "
                f"{self.n_regions} linear subregions, more than max_sequences={cap}; exact "
                "enumeration is only feasible for few switching units (a small hidden "
                "layer, or an AL-RNN with few ReLUs)")
        grid = itertools.product(range(self._states_per_unit), repeat=self.n_switching)
        rows = [list(reversed(g)) for g in grid]  # first unit least significant
        return torch.tensor(rows, dtype=torch.int64).reshape(-1, self.n_switching)

    @torch.no_grad()
    def cycles(self, k: int = 1, *, max_sequences: int = MAX_REGION_SEQUENCES) -> PeriodicOrbits:
        """All :math:`k`-cycles of minimal period :math:`k`, found exactly.

        In every sequence of linear subregions :math:`(d_1, \\dots, d_k)` the map is affine,
        :math:`F(z) = J_{d} z + c_{d}`, so a :math:`k`-cycle through it solves the linear
        system :math:`(I - J_{d_k} \\cdots J_{d_1}) z_1 = b` (with :math:`b` the composed
        offsets). The solution is kept when it is *self-consistent*: each
        :math:`z_i` lies in region :math:`d_i` (pre-activations within
        :data:`ORBIT_TOLERANCE` of a border count for either side). Singular systems
        (a continuum of solutions or none) are skipped. Orbits are returned once (not once
        per cyclic shift), those of a smaller period left out.

        Args:
            k: the period (1 for fixed points).
            max_sequences: refuse (ConfigError) when ``n_regions ** k`` exceeds this.
        """
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ConfigError(f"k must be an int >= 1, got {k!r}")
        n_seq = self.n_regions ** k
        if n_seq > max_sequences:
            raise ConfigError(
                f"{type(self).__name__}: {self.n_regions} linear subregions give "
                f"{self.n_regions}^{k} = {n_seq} region sequences for {k}-cycles, more "
                f"than max_sequences={max_sequences}; exact enumeration is feasible only "
                "for few switching units")
        pats = self._all_patterns(max_sequences)
        jac, off = self._affine(pats)  # [R, M, M], [R, M]
        r, m = pats.shape[0], self.dim
        seq = torch.cartesian_prod(*[torch.arange(r)] * k).reshape(-1, k)  # [S, k]
        eye = torch.eye(m, dtype=torch.float64)
        prod = eye.expand(seq.shape[0], m, m)
        b = torch.zeros(seq.shape[0], m, dtype=torch.float64)
        for i in range(k):
            j = jac[seq[:, i]]
            prod = j @ prod
            b = (j @ b[..., None])[..., 0] + off[seq[:, i]]
        sol, info = torch.linalg.solve_ex(eye - prod, b)
        ok = (info == 0) & torch.isfinite(sol).all(-1)
        # Near-singular systems give huge, meaningless solutions; the residual check drops them.
        pts = [sol]
        for i in range(k - 1):
            nxt = (jac[seq[:, i]] @ pts[-1][..., None])[..., 0] + off[seq[:, i]]
            pts.append(nxt)
        points = torch.stack(pts, 1)  # [S, k, M]
        for i in range(k):
            ok &= self._pattern_ok(points[:, i], pats[seq[:, i]])
        closing = (jac[seq[:, -1]] @ points[:, -1, :, None])[..., 0] + off[seq[:, -1]]
        scale = 1 + points.abs().amax((1, 2))
        ok &= (closing - points[:, 0]).abs().amax(-1) <= 1e-9 * scale
        points, prods, seqs = points[ok], prod[ok], seq[ok]
        keep: list[int] = []
        for a in range(points.shape[0]):
            p = points[a]
            if any((p[0] - p[d]).abs().max() <= ORBIT_TOLERANCE * (1 + p.abs().max())
                   for d in range(1, k) if k % d == 0):
                continue  # a smaller period
            dup = False
            for b_ in keep:
                q = points[b_]
                if any((torch.roll(q, s, 0) - p).abs().max() <= ORBIT_TOLERANCE * (1 + p.abs().max())
                       for s in range(k)):
                    dup = True
                    break
            if not dup:
                keep.append(a)
        idx = torch.tensor(keep, dtype=torch.int64)
        points, prods, seqs = points[idx], prods[idx], seqs[idx]
        eig = torch.linalg.eigvals(prods) if len(keep) else torch.zeros(0, m, dtype=torch.complex128)
        base = self._states_per_unit ** torch.arange(self.n_switching)
        regions = (pats[seqs] * base).sum(-1) if len(keep) else torch.zeros(0, k, dtype=torch.int64)
        return PeriodicOrbits(period=k, points=points, regions=regions, eigenvalues=eig,
                              stable=eig.abs().amax(-1) < 1 if len(keep) else
                              torch.zeros(0, dtype=torch.bool))

    def fixed_points(self, *, max_sequences: int = MAX_REGION_SEQUENCES) -> PeriodicOrbits:
        """All fixed points :math:`F(z^*) = z^*`: :meth:`cycles` with ``k = 1``."""
        return self.cycles(1, max_sequences=max_sequences)

    def generate(self, z0: States, n_steps: int, *,
                 bound: float | None = None) -> TimeSeries:
        """Free-running trajectory from ``z0`` (``[*batch, M]``) for ``n_steps`` steps.

        Returns ``[*batch, n_steps + 1, M]`` (``z0`` first), without gradient.

        Raises:
            DivergenceError: a state became non-finite (or exceeded ``bound`` in magnitude),
                naming the first step at which it did.
        """
        z = self._check(z0)
        if not isinstance(n_steps, int) or isinstance(n_steps, bool) or n_steps < 0:
            raise ConfigError(f"n_steps must be an int >= 0, got {n_steps!r}")
        n = n_steps
        p = next(self.parameters())
        z = z.detach().to(p.dtype).to(p.device)
        out = torch.empty((*z.shape[:-1], n + 1, self.dim), dtype=z.dtype, device=z.device)
        out[..., 0, :] = z
        check_every, checked = 256, 0
        with torch.no_grad():
            for t in range(1, n + 1):
                z = self(z)
                out[..., t, :] = z
                if t % check_every == 0 or t == n:
                    self._raise_if_bad(out, checked + 1, t, bound)
                    checked = t
        return out

    @staticmethod
    def _raise_if_bad(out: torch.Tensor, lo: int, hi: int, bound: float | None) -> None:
        seg = out[..., lo:hi + 1, :]
        bad = ~torch.isfinite(seg).all(-1)
        if bound is not None:
            bad |= (seg.abs() > bound).any(-1)
        if bool(bad.any()):
            flat = bad.reshape(-1, bad.shape[-1]).any(0)
            first = lo + int(torch.nonzero(flat)[0])
            what = "non-finite" if bound is None else f"non-finite or beyond |z| > {bound}"
            raise DivergenceError(f"the free-running trajectory became {what} at step {first}")


class ShallowPLRNN(PiecewiseLinearRNN):
    r"""Shallow PLRNN :math:`z_{t+1} = A z + W_1 \mathrm{relu}(W_2 z + h_2) + h_1`, or with
    ``clipped=True`` :math:`z_{t+1} = A z + W_1[\mathrm{relu}(W_2 z + h_2) -
    \mathrm{relu}(W_2 z)] + h_1` (Hess et al. 2023).

    Initialisation as in the GTF paper's code: ``A`` the diagonal of a normalised
    positive-definite matrix (:math:`(R^T R / M + I)/\lambda_{max}`, entries in (0, 1]);
    :math:`W_1` (``[M, L]``) and :math:`W_2` (``[L, M]``) uniform on
    :math:`\pm 1/\sqrt{\text{fan-in}}`; :math:`h_1 = 0`; :math:`h_2 = 0` for the plain
    model and uniform on :math:`\pm 1/\sqrt{L}` for the clipped one (whose nonlinearity
    vanishes at :math:`h_2 = 0`).

    The clipped nonlinearity is bounded by :math:`|h_2|` per unit, so with
    :math:`\|A\|_2 = \max_i |a_i| < 1` every orbit enters the ball of radius
    :math:`(\|W_1\|_2 \|h_2\| + \|h_1\|) / (1 - \max_i |a_i|)` (plus any margin): bounded
    orbits for any :math:`W_1, W_2`.

    Args:
        dim: latent dimension :math:`M`.
        hidden: hidden width :math:`L`.
        clipped: the clipped variant.
        seed: seeds the initialisation (int, generator or None).
        dtype: parameter dtype.

    Example:
        >>> import torch
        >>> m = ShallowPLRNN(3, 4, seed=0, dtype=torch.float64)
        >>> m.generate(torch.zeros(3), 10).shape
        torch.Size([11, 3])
    """

    def __init__(self, dim: int, hidden: int, *, clipped: bool = False,
                 seed: int | torch.Generator | None = 0,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        for name, v in (("dim", dim), ("hidden", hidden)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"{name} must be an int >= 1, got {v!r}")
        gen = make_generator(seed)
        self.dim, self.hidden, self.clipped = dim, hidden, bool(clipped)
        self._states_per_unit = 3 if clipped else 2
        a = torch.diagonal(_normalised_positive_definite(dim, gen)).clone()
        self.A = nn.Parameter(a.to(dtype))
        self.W1 = nn.Parameter(uniform((dim, hidden), 1.0 / math.sqrt(hidden), gen, dtype=dtype))
        self.W2 = nn.Parameter(uniform((hidden, dim), 1.0 / math.sqrt(dim), gen, dtype=dtype))
        self.h1 = nn.Parameter(torch.zeros(dim, dtype=dtype))
        h2 = (uniform((hidden,), 1.0 / math.sqrt(hidden), gen, dtype=dtype) if clipped
              else torch.zeros(hidden, dtype=dtype))
        self.h2 = nn.Parameter(h2)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, hidden={self.hidden}, clipped={self.clipped}"

    def forward(self, z: States) -> States:
        u = z @ self.W2.T
        phi = torch.relu(u + self.h2)
        if self.clipped:
            phi = phi - torch.relu(u)
        return self.A * z + phi @ self.W1.T + self.h1

    def stacked_step(self, params: dict[str, torch.Tensor], z: MemberStates) -> MemberStates:
        u = torch.bmm(z, params["W2"].transpose(1, 2))
        phi = torch.relu(u + params["h2"][:, None])
        if self.clipped:
            phi = phi - torch.relu(u)
        return (params["A"][:, None] * z + torch.bmm(phi, params["W1"].transpose(1, 2))
                + params["h1"][:, None])

    def _slopes(self, z: torch.Tensor) -> torch.Tensor:
        u = z @ self.W2.T
        d = (u + self.h2 > 0).to(z.dtype)
        if self.clipped:
            d = d - (u > 0).to(z.dtype)
        return d

    def jacobian(self, z: States) -> Jacobians:
        r""":math:`\partial F / \partial z = \mathrm{diag}(A) + W_1 \mathrm{diag}(d) W_2`,
        ``[*batch, M, M]``, with :math:`d` the ReLU slopes (for the clipped model
        :math:`1[W_2 z + h_2 > 0] - 1[W_2 z > 0]`)."""
        z = self._check(z)
        d = self._slopes(z)
        return torch.diag_embed(self.A.expand_as(z)) + (self.W1 * d[..., None, :]) @ self.W2

    @property
    def n_switching(self) -> int:
        return self.hidden

    def pattern(self, z: States) -> Int[Tensor, "*batch switching"]:
        """Per hidden unit: ``1`` where the ReLU is on (``0`` off); for the clipped model
        ``0`` below both kinks, ``1`` between them, ``2`` above both."""
        z = self._check(z)
        u = z @ self.W2.T
        if not self.clipped:
            return (u + self.h2 > 0).to(torch.int64)
        return (u + self.h2 > 0).to(torch.int64) + (u > 0).to(torch.int64)

    def _affine(self, patterns: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, w1, w2 = (p.detach().to("cpu", torch.float64) for p in (self.A, self.W1, self.W2))
        h1, h2 = (p.detach().to("cpu", torch.float64) for p in (self.h1, self.h2))
        if self.clipped:
            # between the kinks only one ReLU is on: the one at u = -h2 when h2 > 0 (slope +1,
            # offset h2), the one at u = 0 when h2 < 0 (slope -1, offset 0); above both the
            # slopes cancel and the output is h2.
            mid = patterns == 1
            slope = torch.where(mid, torch.sign(h2), torch.zeros(()).double())
            on1 = (patterns == 2) | (mid & (h2 > 0))
            offset = torch.where(on1, h2, torch.zeros(()).double())
        else:
            slope = patterns.to(torch.float64)
            offset = slope * h2
        jac = torch.diag(a) + (w1 * slope[:, None, :]) @ w2
        return jac, offset @ w1.T + h1

    def _pattern_ok(self, z: torch.Tensor, patterns: torch.Tensor) -> torch.Tensor:
        w2, h2 = (p.detach().to("cpu", torch.float64) for p in (self.W2, self.h2))
        u = z @ w2.T
        tol = ORBIT_TOLERANCE * (1 + u.abs())
        if not self.clipped:
            on = u + h2
            ok = torch.where(patterns == 1, on >= -tol, on <= tol)
            return ok.all(-1)
        lo, hi = torch.minimum(-h2, torch.zeros(())), torch.maximum(-h2, torch.zeros(()))
        ok = torch.where(patterns == 0, u <= lo + tol,
                         torch.where(patterns == 1, (u >= lo - tol) & (u <= hi + tol),
                                     u >= hi - tol))
        return ok.all(-1)


class ALRNN(PiecewiseLinearRNN):
    r"""Almost-linear RNN :math:`z_{t+1} = A z + W \Phi^*(z) + h` with only the last
    :math:`P` units rectified (Brenner et al. 2024).

    Initialisation as for the PLRNN (the AL-RNN code's): :math:`A` and :math:`W` the
    diagonal and off-diagonal parts of a normalised positive-definite matrix
    :math:`(R^T R/M + I)/\lambda_{max}`, :math:`h = 0`. As in the PLRNN, :math:`W` has a
    zero diagonal (kept so by a fixed mask), so that the self-coupling lives in :math:`A`
    alone.

    Args:
        dim: latent dimension :math:`M`.
        n_relu: :math:`P`, the number of ReLU units (``0 <= P <= M``).
        seed: seeds the initialisation.
        dtype: parameter dtype.

    Example:
        >>> import torch
        >>> m = ALRNN(5, 2, seed=0, dtype=torch.float64)
        >>> m.symbolic_code(torch.randn(7, 5)).shape
        torch.Size([7])
    """

    def __init__(self, dim: int, n_relu: int, *, seed: int | torch.Generator | None = 0,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise ConfigError(f"dim must be an int >= 1, got {dim!r}")
        if not isinstance(n_relu, int) or isinstance(n_relu, bool) or not 0 <= n_relu <= dim:
            raise ConfigError(f"n_relu must be an int in [0, dim={dim}], got {n_relu!r}")
        gen = make_generator(seed)
        self.dim, self.n_relu = dim, n_relu
        k = _normalised_positive_definite(dim, gen)
        mask = 1.0 - torch.eye(dim, dtype=torch.float64)
        self.A = nn.Parameter(torch.diagonal(k).clone().to(dtype))
        self.W = nn.Parameter((k * mask).to(dtype))
        self.h = nn.Parameter(torch.zeros(dim, dtype=dtype))
        self._offdiag: torch.Tensor
        self.register_buffer("_offdiag", mask.to(dtype), persistent=False)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, n_relu={self.n_relu}"

    def _phi(self, z: torch.Tensor) -> torch.Tensor:
        p = self.n_relu
        if p == 0:
            return z
        return torch.cat([z[..., : self.dim - p], torch.relu(z[..., self.dim - p:])], -1)

    def forward(self, z: States) -> States:
        return self.A * z + self._phi(z) @ (self.W * self._offdiag).T + self.h

    def stacked_step(self, params: dict[str, torch.Tensor], z: MemberStates) -> MemberStates:
        w = params["W"] * params["_offdiag"]
        return params["A"][:, None] * z + torch.bmm(self._phi(z), w.transpose(1, 2)) \
            + params["h"][:, None]

    def jacobian(self, z: States) -> Jacobians:
        r""":math:`\mathrm{diag}(A) + W \mathrm{diag}(\Phi^{*\prime}(z))`, ``[*batch, M, M]``."""
        z = self._check(z)
        d = torch.ones_like(z)
        if self.n_relu:
            d[..., self.dim - self.n_relu:] = (z[..., self.dim - self.n_relu:] > 0).to(z.dtype)
        w = self.W * self._offdiag
        return torch.diag_embed(self.A.expand_as(z)) + w * d[..., None, :]

    @property
    def n_switching(self) -> int:
        return self.n_relu

    def pattern(self, z: States) -> Int[Tensor, "*batch switching"]:
        """``[*batch, P]``: 1 where each ReLU unit is on."""
        z = self._check(z)
        return (z[..., self.dim - self.n_relu:] > 0).to(torch.int64)

    def symbolic_code(self, z: States) -> Int[Tensor, "*batch"]:
        r"""The linear subregion of each state, ``[*batch]`` int64 in :math:`[0, 2^P)`:
        :math:`\sum_i 2^i \, 1[z_{M-P+1+i} > 0]`. Applied to a trajectory
        ``[*batch, time, M]`` it gives the symbolic sequence ``[*batch, time]``."""
        return self.region(z)

    def _affine(self, patterns: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, h = (p.detach().to("cpu", torch.float64) for p in (self.A, self.h))
        w = (self.W * self._offdiag).detach().to("cpu", torch.float64)
        d = torch.ones(patterns.shape[0], self.dim, dtype=torch.float64)
        d[:, self.dim - self.n_relu:] = patterns.to(torch.float64)
        jac = torch.diag(a) + w * d[:, None, :]
        return jac, h.expand(patterns.shape[0], -1)

    def _pattern_ok(self, z: torch.Tensor, patterns: torch.Tensor) -> torch.Tensor:
        u = z[:, self.dim - self.n_relu:]
        tol = ORBIT_TOLERANCE * (1 + z.abs().amax(-1, keepdim=True))
        return torch.where(patterns == 1, u >= -tol, u <= tol).all(-1)


class IdentityObservation(nn.Module):
    r"""The first :math:`N` latent units are the observations: :math:`x = z_{1:N}`.

    Teacher forcing replaces (or, in GTF, mixes into) exactly these units. When
    :math:`M > N`, the remaining units of the first state of a sequence are estimated
    from the first observation by a trained matrix :math:`L` (``[M-N, N]``, Glorot-uniform
    start): :math:`z_1 = [x_1, L x_1]`.
    """

    def __init__(self, n_obs: int, dim: int, *, seed: int | torch.Generator | None = 0,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if not isinstance(n_obs, int) or not isinstance(dim, int) or not 1 <= n_obs <= dim:
            raise ConfigError(f"identity observation needs 1 <= N <= M, got N={n_obs!r}, "
                              f"M={dim!r}")
        self.n_obs, self.dim = n_obs, dim
        gen = make_generator(seed)
        bound = math.sqrt(6.0 / dim) if dim > n_obs else 0.0
        self.L = nn.Parameter(uniform((dim - n_obs, n_obs), bound, gen, dtype=dtype))

    def forward(self, z: Float[Tensor, "*batch latent"]) -> Float[Tensor, "*batch obs"]:
        return z[..., : self.n_obs]

    def init_state(self, x: Float[Tensor, "*batch obs"]) -> Float[Tensor, "*batch latent"]:
        """``[x, L x]``: a latent state ``[*batch, M]`` for the observation ``x``."""
        return torch.cat([x, x @ self.L.T], -1)

    def invert(self, x: Float[Tensor, "*batch obs"]) -> Float[Tensor, "*batch obs"]:
        """The forcing signal for the forced units: ``x`` itself (``[*batch, N]``)."""
        return x

    @property
    def n_forced(self) -> int:
        """How many leading latent units teacher forcing acts on (``N``)."""
        return self.n_obs


class AffineObservation(nn.Module):
    r"""An affine read-out :math:`x = B z + c` (``B`` ``[N, M]``, Kaiming-normal start
    with standard deviation :math:`\sqrt{2/M}`; :math:`c = 0`).

    Forcing signals are :math:`B^+ (x - c)` (pseudo-inverse) for all :math:`M` units.
    """

    def __init__(self, n_obs: int, dim: int, *, bias: bool = True,
                 seed: int | torch.Generator | None = 0, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if not isinstance(n_obs, int) or not isinstance(dim, int) or n_obs < 1 or dim < 1:
            raise ConfigError(f"affine observation needs N, M >= 1, got N={n_obs!r}, M={dim!r}")
        self.n_obs, self.dim = n_obs, dim
        gen = make_generator(seed)
        b = torch.randn(n_obs, dim, generator=gen, dtype=torch.float64) * math.sqrt(2.0 / dim)
        self.B = nn.Parameter(b.to(dtype))
        self.c = nn.Parameter(torch.zeros(n_obs, dtype=dtype), requires_grad=bias)

    def forward(self, z: Float[Tensor, "*batch latent"]) -> Float[Tensor, "*batch obs"]:
        return z @ self.B.T + self.c

    def invert(self, x: Float[Tensor, "*batch obs"]) -> Float[Tensor, "*batch latent"]:
        """:math:`B^+ (x - c)`, ``[*batch, M]`` (no gradient)."""
        with torch.no_grad():
            return (x - self.c) @ torch.linalg.pinv(self.B).T

    def init_state(self, x: Float[Tensor, "*batch obs"]) -> Float[Tensor, "*batch latent"]:
        return self.invert(x)

    @property
    def n_forced(self) -> int:
        return self.dim
