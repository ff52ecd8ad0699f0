"""Data sets for symmetry discovery, and user data validated at the boundary.

A :class:`SymmetryData` holds samples ``x`` on which an ``n x n`` group element acts
through a representation (``rep.act(g, x)``), optional invariant targets ``y`` that the
group leaves alone, and, for the synthetic sets, the true generators (``reference``) that
discovery should recover. The discriminator of LieGAN and the two-sample tests see
:meth:`SymmetryData.joint`, the concatenation ``(x, y)``. :meth:`SymmetryData.from_array`
wraps samples of your own.

The synthetic sets follow the benchmarks of LieGAN (Yang et al., "Generative
Adversarial Symmetry Discovery", ICML 2023) and EMLP (Finzi et al., ICML 2021):

* :func:`so2_invariant`: :math:`y = \\tanh(|x|^2 - 1)`, :math:`x \\sim N(0, I_2)`; so(2).
* :func:`two_body`: Kepler orbits of two unit masses, positions and momenta at two times;
  one rotation acts on all eight 2-vectors; so(2).
* :func:`o5_invariant`: EMLP's :math:`y = \\sin|x| - |x|^3 / 2`, :math:`x \\sim N(0, I_5)`; so(5).
* :func:`lorentz_invariant`: two 4-momenta and their Minkowski products; so(1,3).
* :func:`anisotropic_control`: :math:`y = x_1` with :math:`x \\sim N(0, \\mathrm{diag}(1, 0.4^2))`:
  no continuous symmetry (the negative control).

Each takes ``seed``: an int, a :class:`torch.Generator` (used as is, so one generator can
feed several data sets) or None (fresh entropy); an int gives the same samples every time.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from labkit.core.config import check_in, check_int
from labkit.core.integrate import rk4
from labkit.errors import ConfigError, DataError
from labkit.symmetry._algebra import lorentz, so
from labkit.symmetry._reps import DirectSum, Point, Rep, Scalars, Vector
from labkit.symmetry._seed import Seed, generator

__all__ = [
    "SymmetryData",
    "anisotropic_control",
    "lorentz_invariant",
    "o5_invariant",
    "so2_invariant",
    "two_body",
]

KINDS = ("continuous", "discrete", "none")

#: Standard deviations of the two inputs of :func:`anisotropic_control`.
ANISOTROPIC_STD = (1.0, 0.4)
#: Kepler problem: gravitational constant and the two masses (units where G = m = 1).
KEPLER_G, KEPLER_MASSES = 1.0, (1.0, 1.0)
#: Time between the two snapshots of :func:`two_body`, and the RK4 step used for it.
KEPLER_LAG, KEPLER_DT = 0.5, 0.01
#: Spread of the common boost rapidity in :func:`lorentz_invariant`.
LORENTZ_RAPIDITY_STD = 0.5


def _acting_size(rep: Rep) -> int:
    """The matrix size ``n`` a representation expects, or raise ConfigError."""
    if isinstance(rep, Vector | Point):
        return rep.dim
    if isinstance(rep, DirectSum):
        sizes = {r.dim for r in rep.reps if not isinstance(r, Scalars)}
        if len(sizes) == 1:
            return sizes.pop()
        raise ConfigError(
            f"every non-scalar block of {rep!r} must have the same size so that one n x n "
            f"group element acts on all of them, got sizes {sorted(sizes)}"
        )
    raise ConfigError(f"rep must be a Vector, Point or a DirectSum of them, got {rep!r}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class SymmetryData:
    """Samples for symmetry discovery.

    Attributes:
        name: short name (``"two_body"``).
        x: ``[N, D]`` float64 samples the group acts on.
        y: ``[N, m]`` float64 invariant features or targets (left alone), or None.
        rep: how an ``n x n`` group element acts on ``x`` (``8 * Vector(2)`` for two bodies).
        n: generator matrix size.
        reference: ``[k, n, n]`` true generators, or None when there is none.
        kind: ``"continuous"``, ``"discrete"`` or ``"none"`` (no symmetry).
        description: one sentence for people.
    """

    name: str
    x: torch.Tensor
    y: torch.Tensor | None
    rep: Rep
    n: int
    reference: torch.Tensor | None
    kind: str
    description: str

    def __post_init__(self) -> None:
        check_in("kind", self.kind, KINDS)
        if not isinstance(self.x, torch.Tensor) or self.x.ndim != 2:
            raise ConfigError(f"x must be a tensor [N, D], got {_shape(self.x)}")
        if not isinstance(self.rep, Rep) or self.rep.dim != self.x.shape[1]:
            raise ConfigError(
                f"rep must act on the {self.x.shape[1]} columns of x, got {self.rep!r} "
                f"(dim {getattr(self.rep, 'dim', '?')})"
            )
        if _acting_size(self.rep) != self.n:
            raise ConfigError(f"n must be {_acting_size(self.rep)} for {self.rep!r}, got {self.n!r}")
        if self.y is not None and (
            not isinstance(self.y, torch.Tensor) or self.y.ndim != 2
            or self.y.shape[0] != self.x.shape[0]
        ):
            raise ConfigError(f"y must be a tensor [{self.x.shape[0]}, m] or None, got {_shape(self.y)}")
        ref = self.reference
        if ref is not None and (
            not isinstance(ref, torch.Tensor) or ref.ndim != 3 or ref.shape[1:] != (self.n, self.n)
        ):
            raise ConfigError(f"reference must be a tensor [k, {self.n}, {self.n}], got {_shape(ref)}")

    @property
    def n_samples(self) -> int:
        return self.x.shape[0]

    @classmethod
    def from_array(
        cls,
        x: object,
        *,
        rep: Rep | None = None,
        y: object | None = None,
        name: str = "data",
        reference: object | None = None,
        kind: str | None = None,
        description: str = "user data",
    ) -> SymmetryData:
        """User samples, validated and wrapped (as float64 copies on the CPU).

        Args:
            x: ``[N, D]`` samples (array-like; a 1-D array is one feature), ``N >= 2``.
            rep: how a group element acts on ``x``; ``Vector(D)`` by default.
            y: ``[N, m]`` invariant features (or ``[N]``), or None.
            name: a short name.
            reference: ``[k, n, n]`` known generators (or one ``[n, n]``), for scoring.
            kind: ``"continuous"``, ``"discrete"`` or ``"none"``; by default ``"continuous"``
                when a reference is given, else ``"discrete"``.
            description: one sentence for people.

        Raises:
            DataError: non-finite values (naming the first row and column).
            ConfigError: wrong shapes (naming the expected shape) or a mismatched ``rep``.

        Example:
            >>> from labkit.symmetry import SymmetryData
            >>> data = SymmetryData.from_array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], y=[1.0, 1.0, 1.0])
            >>> data.n, data.rep, data.kind
            (2, Vector(2), 'discrete')
        """
        xt = _as_matrix("x", x)
        yt = None if y is None else _as_matrix("y", y, n_rows=xt.shape[0])
        rep = Vector(xt.shape[1]) if rep is None else rep
        if not isinstance(rep, Rep):
            raise ConfigError(f"rep must be a labkit.symmetry Rep, got {rep!r}")
        if rep.dim != xt.shape[1]:
            raise ConfigError(f"rep {rep!r} acts on {rep.dim} features but x has {xt.shape[1]} columns")
        n = _acting_size(rep)
        ref = None
        if reference is not None:
            ref = torch.as_tensor(reference, dtype=torch.float64)
            ref = ref[None] if ref.ndim == 2 else ref
            if ref.ndim != 3 or ref.shape[1:] != (n, n):
                raise ConfigError(f"reference must have shape [k, {n}, {n}], got {tuple(ref.shape)}")
            if not torch.isfinite(ref).all():
                raise DataError("reference has non-finite entries")
        kind = kind if kind is not None else ("continuous" if ref is not None else "discrete")
        return cls(name=name, x=xt, y=yt, rep=rep, n=n, reference=ref, kind=kind,
                   description=description)

    def joint(self) -> torch.Tensor:
        """``cat(x, y)`` along the last axis, ``[N, D + m]``, as the discriminator sees it."""
        return self.x if self.y is None else torch.cat([self.x, self.y], dim=-1)

    def transform(self, g: torch.Tensor) -> torch.Tensor:
        """The joint samples with ``x`` acted on by ``g`` (``[N, n, n]`` or one ``[n, n]``)."""
        gx = self.rep.act(g.to(self.x.dtype), self.x)
        return gx if self.y is None else torch.cat([gx, self.y], dim=-1)

    def __repr__(self) -> str:
        y = "None" if self.y is None else f"[{self.y.shape[0]}, {self.y.shape[1]}]"
        k = "None" if self.reference is None else self.reference.shape[0]
        return (f"SymmetryData({self.name!r}, x=[{self.x.shape[0]}, {self.x.shape[1]}], y={y}, "
                f"rep={self.rep!r}, n={self.n}, reference generators={k}, kind={self.kind!r})")


def _shape(t: object) -> object:
    return tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__


def _first_bad(t: torch.Tensor) -> str:
    bad = torch.nonzero(~torch.isfinite(t))
    row, col = bad[0].tolist() if bad.ndim == 2 and bad.shape[1] == 2 else (int(bad[0].item()), 0)
    return f"{bad.shape[0]} non-finite value(s), the first at row {row}, column {col} ({t[row, col].item()})"


def _as_matrix(name: str, value: object, n_rows: int | None = None) -> torch.Tensor:
    try:
        t = torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"{name} must be an array of numbers, got {type(value).__name__}") from exc
    if t.ndim == 1:
        t = t[:, None]
    want = f"[{n_rows if n_rows is not None else 'N'}, features]"
    if t.ndim != 2 or (n_rows is not None and t.shape[0] != n_rows) or t.shape[0] < 2:
        raise ConfigError(f"{name} must have shape {want} with at least 2 rows, got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise DataError(f"{name} has {_first_bad(t)}")
    return t.detach().cpu().clone()


def so2_invariant(n_samples: int = 2000, *, seed: Seed = 0) -> SymmetryData:
    """:math:`x \\sim N(0, I_2)`, :math:`y = \\tanh(|x|^2 - 1)`; reference so(2)."""
    check_int("n_samples", n_samples, least=2)
    gen = generator(seed)
    x = torch.randn(n_samples, 2, generator=gen, dtype=torch.float64)
    y = torch.tanh(x.square().sum(-1, keepdim=True) - 1.0)
    return SymmetryData(name="so2_invariant", x=x, y=y, rep=Vector(2), n=2,
                        reference=so(2).basis, kind="continuous",
                        description="y = tanh(|x|^2 - 1) on a Gaussian plane: SO(2)-invariant")


def _kepler(t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Relative motion ``r'' = -G (m_1 + m_2) r / |r|^3`` with state ``(r, v)``."""
    r, v = s[..., :2], s[..., 2:]
    mu = KEPLER_G * sum(KEPLER_MASSES)
    acc = -mu * r / r.norm(dim=-1, keepdim=True).pow(3)
    return torch.cat([v, acc], dim=-1)


def two_body(n_samples: int = 2000, *, seed: Seed = 0) -> SymmetryData:
    """Kepler two-body orbits (as in LieGAN's 2-body experiment, from the HNN data set).

    Two unit masses around their fixed centre of mass. Each sample is the state
    :math:`(q_1, q_2, p_1, p_2)` at a random orbit phase and the same state
    ``KEPLER_LAG`` time units later (RK4, step ``KEPLER_DT``): sixteen numbers, eight
    2-vectors, all turned by the same rotation, so ``rep = 8 * Vector(2)`` and the true
    algebra is so(2). Separations are uniform in [0.5, 1.5], speeds within +-30% of the
    circular speed with a small radial part, orientations uniform: the law of the data
    is rotation-invariant.
    """
    check_int("n_samples", n_samples, least=2)
    gen = generator(seed)

    def u(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n_samples, generator=gen, dtype=torch.float64)

    r0, angle = u(0.5, 1.5), u(0.0, 2 * math.pi)
    v_circ = torch.sqrt(KEPLER_G * sum(KEPLER_MASSES) / r0)
    v_t, v_r = v_circ * u(0.7, 1.3), v_circ * u(-0.2, 0.2)
    c, s = torch.cos(angle), torch.sin(angle)
    r = torch.stack([r0 * c, r0 * s], -1)
    v = torch.stack([v_r * c - v_t * s, v_r * s + v_t * c], -1)
    traj = rk4(_kepler, torch.cat([r, v], -1), (0.0, KEPLER_LAG), KEPLER_DT,
               save_every=round(KEPLER_LAG / KEPLER_DT)).raise_if_diverged()
    m1, m2 = KEPLER_MASSES
    blocks = []
    for state in (traj.y[:, 0], traj.y[:, -1]):
        rel, vel = state[:, :2], state[:, 2:]
        q1, q2 = -m2 / (m1 + m2) * rel, m1 / (m1 + m2) * rel
        mred = m1 * m2 / (m1 + m2)
        blocks += [q1, q2, -mred * vel, mred * vel]
    x = torch.cat(blocks, -1)
    return SymmetryData(name="two_body", x=x, y=None, rep=8 * Vector(2), n=2,
                        reference=so(2).basis, kind="continuous",
                        description="Kepler 2-body states (q1, q2, p1, p2) at t and t + 0.5; "
                                    "one rotation acts on all eight 2-vectors")


def o5_invariant(n_samples: int = 2000, *, seed: Seed = 0) -> SymmetryData:
    """EMLP's O(5)-invariant regression: :math:`y = \\sin|x| - |x|^3/2`, :math:`x \\sim N(0, I_5)`;
    reference so(5) (10 generators). (Finzi, Welling, Wilson, ICML 2021.)"""
    check_int("n_samples", n_samples, least=2)
    gen = generator(seed)
    x = torch.randn(n_samples, 5, generator=gen, dtype=torch.float64)
    r = x.norm(dim=-1, keepdim=True)
    y = torch.sin(r) - r.pow(3) / 2
    return SymmetryData(name="o5_invariant", x=x, y=y, rep=Vector(5), n=5,
                        reference=so(5).basis, kind="continuous",
                        description="y = sin|x| - |x|^3/2 on a Gaussian R^5: O(5)-invariant")


def _minkowski(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a[..., 0] * b[..., 0] - (a[..., 1:] * b[..., 1:]).sum(-1)


def lorentz_invariant(n_samples: int = 2000, *, seed: Seed = 0) -> SymmetryData:
    """Two 4-momenta and Lorentz invariants of them; reference so(1,3) (6 generators).

    Each momentum has a mass uniform in [0.5, 1.5] and a 3-momentum :math:`N(0, I_3)`; the
    pair is then boosted together with rapidity :math:`N(0, 0.5^2)` along a uniform
    direction, which spreads the law of the data along the boosts. The targets are
    :math:`y = (p_1^2, p_2^2, \\log(p_1 \\cdot p_2))` with :math:`\\eta = \\mathrm{diag}(1,-1,-1,-1)`.
    The data law is only approximately boost-invariant (no probability law on momenta
    is exactly), the targets exactly.
    """
    check_int("n_samples", n_samples, least=2)
    gen = generator(seed)
    mass = 0.5 + torch.rand(n_samples, 2, generator=gen, dtype=torch.float64)
    k = torch.randn(n_samples, 2, 3, generator=gen, dtype=torch.float64)
    e = torch.sqrt(mass.square() + k.square().sum(-1))
    p = torch.cat([e[..., None], k], -1)  # [N, 2, 4]
    direction = torch.randn(n_samples, 3, generator=gen, dtype=torch.float64)
    direction = direction / direction.norm(dim=-1, keepdim=True)
    rapidity = LORENTZ_RAPIDITY_STD * torch.randn(n_samples, generator=gen, dtype=torch.float64)
    coeffs = rapidity[:, None] * direction  # [N, 3]
    lam = torch.linalg.matrix_exp(torch.einsum("bk,kij->bij", coeffs, lorentz().basis[:3]))
    p = torch.einsum("bij,bkj->bki", lam, p)
    p1, p2 = p[:, 0], p[:, 1]
    y = torch.stack([_minkowski(p1, p1), _minkowski(p2, p2), torch.log(_minkowski(p1, p2))], -1)
    return SymmetryData(name="lorentz_invariant", x=p.reshape(n_samples, 8), y=y,
                        rep=2 * Vector(4), n=4, reference=lorentz().basis, kind="continuous",
                        description="two boosted 4-momenta with their Minkowski products: "
                                    "Lorentz-invariant targets")


def anisotropic_control(n_samples: int = 2000, *, seed: Seed = 0) -> SymmetryData:
    """The negative control: :math:`y = x_1`, :math:`x \\sim N(0, \\mathrm{diag}(1, 0.4^2))`.

    No one-parameter group of linear maps of :math:`R^2` keeps both the law of ``x`` and
    ``y = x_1``: the shear :math:`x_2 \\to x_2 + t x_1` keeps ``y`` but widens ``x_2``.
    Discovery must report "no symmetry" (``kind="none"``, no reference).
    """
    check_int("n_samples", n_samples, least=2)
    gen = generator(seed)
    x = torch.randn(n_samples, 2, generator=gen, dtype=torch.float64)
    x = x * torch.tensor(ANISOTROPIC_STD, dtype=torch.float64)
    return SymmetryData(name="anisotropic_control", x=x, y=x[:, :1].clone(), rep=Vector(2), n=2,
                        reference=None, kind="none",
                        description="y = x1 on an anisotropic Gaussian: no continuous symmetry")
