"""Equivariance tests for any callable or ``nn.Module``.

:func:`equivariance_error` draws one group element per sample and returns, per sample,
:math:`\\max |f(g \\cdot x) - g \\cdot f(x)|`. :func:`assert_equivariant` and
:func:`assert_invariant` compare that error with a tolerance that depends on the
dtype and on the size of the outputs, and fail with a message that gives the error.
Inputs and outputs may be tuples (``f(h, x) -> (h', x')``), with one representation
per element.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import torch

from labkit.core.rng import make_generator
from labkit.core.shapes import Batched, GroupElements, PerSample
from labkit.errors import ConfigError
from labkit.symmetry._groups import Group
from labkit.symmetry._plain import plain_number
from labkit.symmetry._reps import Rep, Scalars

__all__ = [
    "EquivarianceFailure",
    "EquivarianceReport",
    "assert_equivariant",
    "assert_invariant",
    "default_tolerance",
    "equivariance_error",
]

#: Relative tolerance per dtype: a few hundred ulps of the output scale, since a
#: network's outputs pass through many rounding steps.
RELATIVE_TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-4, torch.float16: 1e-2,
                      torch.bfloat16: 5e-2}


class EquivarianceFailure(AssertionError):
    """Raised by :func:`assert_equivariant` / :func:`assert_invariant`; ``report`` holds the numbers."""

    def __init__(self, message: str, report: EquivarianceReport) -> None:
        super().__init__(message)
        self.report = report


@dataclasses.dataclass(frozen=True)
class EquivarianceReport:
    """Per-sample errors of one test.

    Attributes:
        errors: ``[B]`` max-abs error per sample.
        scale: max |f(x)| over the batch (what relative errors are relative to).
        tolerance: the absolute tolerance the assertion used.
        group: the group's name.
    """

    errors: PerSample
    scale: float
    tolerance: float
    group: str

    @property
    def max_error(self) -> float:
        return float(self.errors.max())

    @property
    def relative_error(self) -> float:
        return self.max_error / self.scale if self.scale > 0 else self.max_error

    @property
    def passed(self) -> bool:
        return self.max_error <= self.tolerance

    def summary(self) -> str:
        """One line: the largest error against the tolerance, and whether it passed."""
        verdict = "passed" if self.passed else "failed"
        return (f"{verdict} under {self.group}: max error {self.max_error:.3e} (relative "
                f"{self.relative_error:.3e}) against tolerance {self.tolerance:.3e}, "
                f"{len(self.errors)} samples")

    def as_dict(self) -> dict[str, Any]:
        """``group``, ``passed``, ``max_error``, ``relative_error``, ``scale``, ``tolerance``
        and ``n_samples``, as plain values (non-finite numbers as None)."""
        return {"group": self.group, "passed": bool(self.passed),
                "max_error": plain_number(self.max_error),
                "relative_error": plain_number(self.relative_error),
                "scale": plain_number(self.scale), "tolerance": plain_number(self.tolerance),
                "n_samples": len(self.errors)}


def default_tolerance(dtype: torch.dtype, scale: float) -> float:
    """Absolute tolerance for outputs of magnitude ``scale`` in ``dtype``."""
    if dtype not in RELATIVE_TOLERANCE:
        raise ConfigError(f"no tolerance for dtype {dtype}; expected one of "
                          f"{sorted(map(str, RELATIVE_TOLERANCE))}")
    return RELATIVE_TOLERANCE[dtype] * max(scale, 1.0)


def _tuple(v) -> tuple:
    return v if isinstance(v, tuple) else (v,)


def _apply(f: Callable, xs: tuple) -> tuple:
    return _tuple(f(*xs))


def _check_reps(name: str, reps: tuple, values: tuple) -> None:
    if len(reps) != len(values):
        raise ConfigError(f"{name}: {len(values)} tensor(s) but {len(reps)} representation(s)")
    for r in reps:
        if not isinstance(r, Rep):
            raise ConfigError(f"{name} must be Rep objects, got {r!r}")


def equivariance_error(
    f: Callable,
    group: Group,
    x: Batched | tuple[Batched, ...],
    in_rep: Rep | Sequence[Rep],
    out_rep: Rep | Sequence[Rep] | None = None,
    *,
    seed: int | torch.Generator | None = 0,
    g: GroupElements | tuple[torch.Tensor, ...] | None = None,
) -> PerSample:
    """Per-sample error :math:`\\max |f(g \\cdot x) - \\rho_{out}(g) f(x)|`.

    Args:
        f: a callable or module; gets ``*x`` when ``x`` is a tuple.
        group: where the elements come from (one per sample, drawn with ``seed``).
        x: ``[B, ...]`` inputs, or a tuple of them.
        in_rep: how ``g`` acts on each input.
        out_rep: how ``g`` acts on each output; ``None`` means invariant outputs.
        seed: the random generator for the group elements.
        g: use these elements instead of sampling (``[B, d, d]``, or a tuple for products).

    Returns:
        ``[B]`` errors (differentiable, so it can serve as a soft-equivariance penalty).
    """
    xs = _tuple(x)
    if not xs or not all(isinstance(t, torch.Tensor) and t.ndim >= 1 for t in xs):
        raise ConfigError("x must be a batched tensor [B, ...] or a tuple of them")
    batch = xs[0].shape[0]
    in_reps = _tuple(in_rep) if not isinstance(in_rep, list) else tuple(in_rep)
    _check_reps("in_rep", in_reps, xs)
    if g is None:
        g = group.sample(batch, seed=make_generator(seed), dtype=xs[0].dtype)
    g = tuple(t.to(xs[0].device) for t in g) if isinstance(g, tuple) else g.to(xs[0].device)
    gx = tuple(r.act(g, t) for r, t in zip(in_reps, xs, strict=True))
    fx, fgx = _apply(f, xs), _apply(f, gx)
    if out_rep is None:
        out_reps: tuple = tuple(Scalars(t.shape[-1]) if t.ndim else Scalars() for t in fx)
    else:
        out_reps = _tuple(out_rep) if not isinstance(out_rep, list) else tuple(out_rep)
    _check_reps("out_rep", out_reps, fx)
    errs = []
    for r, a, b in zip(out_reps, fx, fgx, strict=True):
        expected = a if isinstance(r, Scalars) else r.act(g, a)
        diff = (b - expected).abs().reshape(batch, -1)
        errs.append(diff.max(dim=1).values)
    return torch.stack(errs).max(dim=0).values


def _assert(f, group, x, in_rep, out_rep, *, what, atol, seed) -> EquivarianceReport:
    with torch.no_grad():
        errors = equivariance_error(f, group, x, in_rep, out_rep, seed=seed)
        outs = _apply(f, _tuple(x))
    scale = max(float(o.abs().max()) for o in outs)
    dtype = outs[0].dtype
    tol = default_tolerance(dtype, scale) if atol is None else float(atol)
    report = EquivarianceReport(errors=errors, scale=scale, tolerance=tol, group=group.name)
    if not torch.isfinite(errors).all():
        raise EquivarianceFailure(f"{what} test under {group.name}: non-finite outputs", report)
    if not report.passed:
        worst = int(errors.argmax())
        raise EquivarianceFailure(
            f"not {what} under {group.name}: max error {report.max_error:.3e} "
            f"(relative {report.relative_error:.3e}, worst sample {worst} of {len(errors)}) "
            f"> tolerance {tol:.3e} for {str(dtype).removeprefix('torch.')} outputs "
            f"of size {scale:.3g}",
            report,
        )
    return report


def assert_equivariant(
    f: Callable,
    group: Group,
    x: Batched | tuple[Batched, ...],
    in_rep: Rep | Sequence[Rep],
    out_rep: Rep | Sequence[Rep],
    *,
    atol: float | None = None,
    seed: int | torch.Generator | None = 0,
) -> EquivarianceReport:
    """Raise :class:`EquivarianceFailure` unless ``f(g x) = g f(x)`` within tolerance.

    The default tolerance is :data:`RELATIVE_TOLERANCE` of the output dtype times the
    output magnitude (at least 1). Returns the :class:`EquivarianceReport` on success.

    Example:
        >>> import torch
        >>> from labkit.symmetry import SpecialOrthogonalGroup, Vector, assert_equivariant
        >>> x = torch.randn(8, 5, 3, dtype=torch.float64)
        >>> report = assert_equivariant(lambda p: 2 * p, SpecialOrthogonalGroup(3), x,
        ...                             Vector(3), Vector(3))
        >>> report.passed
        True
    """
    return _assert(f, group, x, in_rep, out_rep, what="equivariant", atol=atol, seed=seed)


def assert_invariant(
    f: Callable,
    group: Group,
    x: Batched | tuple[Batched, ...],
    in_rep: Rep | Sequence[Rep],
    *,
    atol: float | None = None,
    seed: int | torch.Generator | None = 0,
) -> EquivarianceReport:
    """Raise :class:`EquivarianceFailure` unless ``f(g x) = f(x)`` within tolerance."""
    return _assert(f, group, x, in_rep, None, what="invariant", atol=atol, seed=seed)
