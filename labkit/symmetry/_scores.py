"""Scores for discovered symmetries: matrix cosines, subspace angles, on-data action
distances, a kernel two-sample test and a sustained-threshold rule.

A learned generator is defined up to sign and scale, several learned generators up to
a change of basis of their span, so the matrix scores are sign- and basis-invariant.
A single reading can still lie (docs/symmetry.md, "One reading lies" and "The matrix
cosine and data on a subspace"): a matrix cosine of 0.70 can hide an action that agrees
on the data within 1% when the data lie on a subspace, and a training curve can cross a
threshold briefly on a spurious direction. Hence :func:`action_distance`,
:func:`mmd_test` and :func:`sustained_crossing`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from labkit.core.config import check_int, check_positive
from labkit.core.shapes import Generators
from labkit.errors import ConfigError, DataError
from labkit.symmetry._plain import plain_number
from labkit.symmetry._reps import Rep
from labkit.symmetry._seed import Seed, check_seed, generator

__all__ = [
    "TwoSampleTest",
    "action_distance",
    "frobenius_cosine",
    "mmd_test",
    "principal_cosines",
    "sustained_crossing",
]


def _as_stack(name: str, a: object) -> torch.Tensor:
    t = torch.as_tensor(a, dtype=torch.float64)
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3 or t.shape[1] != t.shape[2]:
        raise ConfigError(f"{name} must be [k, n, n] or [n, n], got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise DataError(f"{name} has non-finite entries")
    return t


def frobenius_cosine(a: Float[Tensor, "*ka n n"], b: Float[Tensor, "*kb n n"]) -> float:
    """:math:`|\\langle A, B\\rangle_F| / (\\|A\\|_F \\|B\\|_F)` for two single generators
    ``[n, n]`` (or ``[1, n, n]``), sign-invariant; 0 when either is zero."""
    a, b = _as_stack("a", a), _as_stack("b", b)
    if a.shape != b.shape or a.shape[0] != 1:
        raise ConfigError(f"frobenius_cosine compares two [n, n] matrices, got "
                          f"{tuple(a.shape[1:])} and {tuple(b.shape[1:])} (k={a.shape[0]}, {b.shape[0]})")
    na, nb = a.norm(), b.norm()
    if na == 0 or nb == 0:
        return 0.0
    return float((a * b).sum().abs() / (na * nb))


def _orthonormal(flat: torch.Tensor, rtol: float = 1e-10) -> torch.Tensor:
    u, s, _ = torch.linalg.svd(flat.T, full_matrices=False)
    keep = s > rtol * (s.max() if s.numel() else 0.0)
    return u[:, keep]


def principal_cosines(a: Float[Tensor, "*ka n n"], b: Float[Tensor, "*kb n n"]
                      ) -> Float[Tensor, " cosines"]:
    """Cosines of the principal angles between :math:`\\mathrm{span}\\{A_i\\}` and
    :math:`\\mathrm{span}\\{B_j\\}` (matrices flattened, Frobenius inner product),
    descending, ``min(dim A, dim B)`` of them.

    For orthonormal bases :math:`Q_A, Q_B` they are the singular values of
    :math:`Q_A^T Q_B` (Bjorck & Golub 1973). The smallest is the score of a set of
    generators: 1 exactly when one span contains the other. Dependent generators count
    once; a zero span gives an empty tensor. ``a`` and ``b`` are ``[k, n, n]`` stacks (or
    single ``[n, n]`` generators) with their own ``k``.
    """
    a, b = _as_stack("a", a), _as_stack("b", b)
    if a.shape[1:] != b.shape[1:]:
        raise ConfigError(f"generators of different sizes: {tuple(a.shape)} and {tuple(b.shape)}")
    qa, qb = _orthonormal(a.flatten(1)), _orthonormal(b.flatten(1))
    if qa.shape[1] == 0 or qb.shape[1] == 0:
        return torch.zeros(0, dtype=torch.float64)
    s = torch.linalg.svdvals(qa.T @ qb).clamp(0.0, 1.0)
    return torch.sort(s, descending=True).values


def smallest_cosine(a: Float[Tensor, "*ka n n"], b: Float[Tensor, "*kb n n"]) -> float:
    """The smallest :func:`principal_cosines` of two stacks of generators (0 for an empty
    span)."""
    c = principal_cosines(a, b)
    return float(c[-1]) if c.numel() else 0.0


def action_distance(
    generators: Generators,
    reference: Float[Tensor, "r n n"],
    data: Float[Tensor, "samples dim"],
    rep: Rep,
    *,
    t: float = 0.5,
    n_iter: int = 100,
) -> float:
    """How far the learned flows move the data from where the reference group can move it.

    For each learned generator, normalised to :math:`\\|\\hat L\\|_F = 1`, the distance

    .. math::
        d(\\hat L) = \\frac{\\min_c \\mathrm{RMS}_x\\,\\big|e^{t\\hat L} x - e^{\\sum_j c_j R_j} x\\big|}
                          {\\mathrm{RMS}_x\\,\\big|e^{t\\hat L} x - x\\big|}

    over the samples ``x`` (acted on through ``rep``): 0 when the reference group
    reproduces the learned motion of the data, 1 when it can do no better than not
    moving. The minimum over the reference coefficients ``c`` starts from the projection
    of :math:`t \\hat L` on the reference span and is refined by L-BFGS. The largest
    distance over the learned generators is returned. Unlike the matrix cosine, it
    ignores what a generator does off the data (docs/symmetry.md, "The matrix cosine and
    data on a subspace": cosine 0.70, the same action on the data).

    Args:
        generators: ``[k, n, n]`` learned generators.
        reference: ``[r, n, n]`` true generators.
        data: ``[N, D]`` samples ``x`` (``D = rep.dim``); at most 512 are used.
        rep: the representation acting on ``data``.
        t: flow time along the normalised generator.
    """
    gens, ref = _as_stack("generators", generators), _as_stack("reference", reference)
    check_positive("t", t)
    x = torch.as_tensor(data, dtype=torch.float64)[:512]
    if x.ndim != 2 or x.shape[1] != rep.dim:
        raise ConfigError(f"data must be [N, {rep.dim}] for {rep!r}, got {tuple(x.shape)}")
    flat_ref = ref.flatten(1)
    worst = 0.0
    for gen in gens:
        norm = gen.norm()
        if norm == 0:
            return 1.0
        lhat = gen / norm
        target = rep.act(torch.linalg.matrix_exp(t * lhat), x)
        moved = (target - x).square().sum(-1).mean().sqrt()
        if moved == 0:
            continue
        c0 = torch.linalg.lstsq(flat_ref.T, (t * lhat).flatten()[:, None]).solution[:, 0]
        c = c0.clone().requires_grad_(True)
        opt = torch.optim.LBFGS([c], max_iter=n_iter, line_search_fn="strong_wolfe")

        def closure(c=c, opt=opt, target=target) -> torch.Tensor:
            opt.zero_grad()
            g = torch.linalg.matrix_exp(torch.einsum("k,kij->ij", c, ref))
            loss = (rep.act(g, x) - target).square().sum(-1).mean()
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            g = torch.linalg.matrix_exp(torch.einsum("k,kij->ij", c, ref))
            dist = (rep.act(g, x) - target).square().sum(-1).mean().sqrt()
        worst = max(worst, float(dist / moved))
    return worst


@dataclasses.dataclass(frozen=True)
class TwoSampleTest:
    """A two-sample test: its statistic, permutation p-value and method in words."""

    statistic: float
    p_value: float
    method: str

    def rejects(self, alpha: float = 0.05) -> bool:
        """Whether the samples differ at level ``alpha``."""
        return self.p_value < alpha

    def summary(self) -> str:
        """One line: statistic, p-value and method."""
        return f"statistic {self.statistic:.3g}, p = {self.p_value:.3g} ({self.method})"

    def as_dict(self) -> dict[str, Any]:
        """``statistic``, ``p_value`` (None if not finite) and ``method``."""
        return {"statistic": plain_number(self.statistic), "p_value": plain_number(self.p_value),
                "method": self.method}


def mmd_test(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    n_permutations: int = 200,
    seed: Seed = 0,
    max_samples: int = 1000,
    paired: bool = False,
    bandwidths: Sequence[float] = (0.25, 0.5, 1.0, 2.0),
) -> TwoSampleTest:
    """Kernel two-sample test (Gretton et al., JMLR 2012) with a permutation p-value.

    Statistic: the biased estimate

    .. math::
        \\mathrm{MMD}^2 = \\frac{1}{n^2}\\sum k(a_i, a_j) + \\frac{1}{m^2}\\sum k(b_i, b_j)
                         - \\frac{2}{nm}\\sum k(a_i, b_j),
        \\qquad k(u, v) = \\sum_{c} e^{-|u - v|^2 / (2 c^2 \\sigma^2)}

    with :math:`\\sigma` the median pairwise distance of the pooled sample (median
    heuristic) and :math:`c` over ``bandwidths``. The median alone is blind to structure
    much finer than the sample's spread (a 0.25-wide blob in a cloud of radius 3; docs/symmetry.md,
    "Kernel widths of the two-sample test"); the sum of scales keeps that power and is still
    a characteristic kernel. The p-value is :math:`(1 + \\#\\{\\pi: \\mathrm{MMD}^2_\\pi \\ge \\mathrm{MMD}^2\\})
    / (1 + n_{perm})` over random relabellings of the pooled sample.

    Args:
        a, b: ``[n, d]`` and ``[m, d]`` samples (at most ``max_samples`` of each are used).
        n_permutations: relabellings for the p-value.
        seed: for the relabellings: an int, a :class:`torch.Generator` (used as is) or
            None (fresh entropy).
        paired: ``b[i]`` is a transformed copy of ``a[i]``; the relabellings then swap
            within pairs only (valid when the law of :math:`(a_i, b_i)` is symmetric under
            the swap, e.g. :math:`b_i = g_i a_i` with :math:`g_i` and :math:`g_i^{-1}` equally
            likely, under the null :math:`g a \\sim a`). Much more powerful against small
            transformations, because each pair's own noise cancels.
        bandwidths: kernel widths as multiples of the median distance.
    """
    check_int("n_permutations", n_permutations)
    check_int("max_samples", max_samples, least=2)
    check_seed(seed)
    scales = [float(c) for c in bandwidths]
    if not scales or not all(math.isfinite(c) and c > 0 for c in scales):
        raise ConfigError(f"bandwidths must be positive finite multiples of the median distance, "
                          f"got {bandwidths!r}")
    a = torch.as_tensor(a, dtype=torch.float64)[:max_samples]
    b = torch.as_tensor(b, dtype=torch.float64)[:max_samples]
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise ConfigError(f"mmd_test needs samples [n, d] and [m, d] with n, m >= 2, got "
                          f"{tuple(a.shape)} and {tuple(b.shape)}")
    if paired and a.shape != b.shape:
        raise ConfigError(f"a paired test needs samples of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        raise DataError("mmd_test got non-finite samples")
    pooled = torch.cat([a, b])
    d2 = torch.cdist(pooled, pooled).square()
    sub = d2[:1000, :1000]
    med = sub[torch.triu(torch.ones_like(sub, dtype=torch.bool), diagonal=1)].median()
    sigma2 = float(med) if float(med) > 0 else 1.0
    k = sum(torch.exp(-d2 / (2 * c * c * sigma2)) for c in scales)
    n, m = len(a), len(b)
    gen = generator(seed)

    def stats(labels: torch.Tensor) -> torch.Tensor:  # labels [P, n+m] bool: True = first sample
        w = torch.where(labels, 1.0 / n, -1.0 / m).to(torch.float64)
        return ((w @ k) * w).sum(-1)

    first = torch.zeros(n + m, dtype=torch.bool)
    first[:n] = True
    observed = float(stats(first[None])[0])
    count, done = 0, 0
    while done < n_permutations:
        chunk = min(50, n_permutations - done)
        if paired:
            swap = torch.rand(chunk, n, generator=gen) < 0.5
            labels = torch.cat([~swap, swap], dim=1)
        else:
            labels = first[torch.argsort(torch.rand(chunk, n + m, generator=gen), dim=1)]
        count += int((stats(labels) >= observed - 1e-12).sum())
        done += chunk
    p = (1 + count) / (1 + n_permutations)
    return TwoSampleTest(statistic=observed, p_value=p,
                         method=f"MMD^2, RBF kernels (sigma = {', '.join(f'{c:g}' for c in scales)} x median "
                                f"{math.sqrt(sigma2):.3g}), "
                                f"{n_permutations} {'paired swaps' if paired else 'permutations'}, n={n}, m={m}")


def sustained_crossing(values: Sequence[float], threshold: float, window: int) -> int | None:
    """The first index ``i`` with ``values[i : i + window]`` all ``>= threshold``.

    A reading that crosses the threshold and falls back (docs/symmetry.md, "One reading
    lies": a control crossed 0.95 briefly in 8 of 10 runs) does not count; NaN counts as below. Returns None when
    no such window exists, including a crossing that lasts fewer than ``window``
    evaluations before the run ends.
    """
    check_int("window", window)
    run = 0
    for i, v in enumerate(values):
        run = run + 1 if (v is not None and not math.isnan(v) and v >= threshold) else 0
        if run >= window:
            return i - window + 1
    return None
