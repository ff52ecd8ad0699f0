"""Discrete symmetries by search: which maps from a finite candidate set leave the law of
the data unchanged?

A continuous method cannot find a reflection: :math:`\\exp(\\sum_i w_i L_i)` is always
in the identity component. For a finite candidate set :math:`\\{G_c\\}` (by default every
signed permutation matrix of size ``n``: :math:`2^n n!` maps, the hyperoctahedral group)
each candidate is tested directly: a kernel two-sample test (:func:`mmd_test`) between
one half of the data and the other half mapped by :math:`G_c`. Candidates the test does
not reject are symmetries; at least one rejected candidate is required as the control
(the test could see a non-symmetry).

On the Lorenz attractor, :math:`(x, y, z) \\to (-x, -y, z)` is found and
:math:`(x, y, z) \\to (x, y, -z)` is not (Lorenz 1963; the :math:`Z_2` symmetry of the
equations, which the attractor inherits).
"""

from __future__ import annotations

import dataclasses
import itertools
import time

import torch

from labkit.core.config import check_int, check_range
from labkit.core.train import History
from labkit.errors import ConfigError, DataError
from labkit.symmetry._data import SymmetryData
from labkit.symmetry._result import DiscoveryResult, Verdict
from labkit.symmetry._scores import TwoSampleTest, mmd_test
from labkit.symmetry._seed import Seed, generator, run_seed

__all__ = ["discover_discrete", "signed_permutations"]

#: Largest ``n`` for which all :math:`2^n n!` signed permutations are tried by default.
MAX_DEFAULT_N = 4


def signed_permutations(n: int, *, include_identity: bool = False) -> torch.Tensor:
    """All ``n x n`` signed permutation matrices, ``[2^n n! (- 1), n, n]`` float64."""
    check_int("n", n)
    out = []
    eye = torch.eye(n, dtype=torch.float64)
    for perm in itertools.permutations(range(n)):
        for signs in itertools.product((1.0, -1.0), repeat=n):
            m = eye[list(perm)] * torch.tensor(signs, dtype=torch.float64)[:, None]
            if include_identity or not torch.equal(m, eye):
                out.append(m)
    return torch.stack(out)


def discover_discrete(
    data: SymmetryData,
    *,
    candidates: torch.Tensor | None = None,
    alpha: float = 0.05,
    n_permutations: int = 200,
    max_samples: int = 1000,
    seed: Seed = 0,
) -> DiscoveryResult:
    """Test every candidate map for invariance of the data law.

    Args:
        data: samples; ``rep`` says how an ``n x n`` matrix acts on ``x``.
        candidates: ``[c, n, n]`` maps to try; default: the signed permutations but the
            identity (``n <= 4``).
        alpha: level of each test.
        n_permutations: relabellings per test. Candidates are first screened with
            ``2 / alpha`` relabellings (a valid p-value of its own); those not rejected
            are tested again with ``n_permutations``.
        max_samples: samples per half.
        seed: splits and relabellings: an int, a :class:`torch.Generator` or None (fresh
            entropy), resolved to one int ``s`` (an int drawn from a generator) that the
            result records as ``seed``. The split uses a stream seeded with ``s``, the test
            of candidate ``c`` one seeded with ``s + c``, as they always have for an int.

    Returns:
        A :class:`~labkit.symmetry.DiscoveryResult` whose ``generators`` are the accepted
        maps (group elements, best first; ``[0, n, n]`` when none), ``two_sample`` the test
        of the best one and ``control`` the rejected candidate closest to being accepted.
        ``scores`` has ``n_candidates``, ``n_accepted`` and, with a reference,
        ``reference_found`` (1.0 when every reference map is accepted).
    """
    began = time.perf_counter()
    if not isinstance(data, SymmetryData):
        raise ConfigError(f"data must be a SymmetryData, got {type(data).__name__}")
    base = run_seed(seed)
    check_range("alpha", alpha, 0.0, 1.0)
    check_int("max_samples", max_samples, least=2)
    if candidates is None:
        if data.n > MAX_DEFAULT_N:
            raise ConfigError(f"default candidates are the signed permutations for n <= {MAX_DEFAULT_N}; "
                              f"n = {data.n}: pass candidates=[c, {data.n}, {data.n}]")
        cands = signed_permutations(data.n)
    else:
        cands = torch.as_tensor(candidates, dtype=torch.float64)
        cands = cands[None] if cands.ndim == 2 else cands
        if cands.ndim != 3 or cands.shape[1:] != (data.n, data.n) or cands.shape[0] == 0:
            raise ConfigError(f"candidates must have shape [c, {data.n}, {data.n}] with c >= 1, "
                              f"got {tuple(cands.shape)}")
        if not torch.isfinite(cands).all():
            raise DataError("candidates have non-finite entries")
    gen = generator(base)
    perm = torch.randperm(data.n_samples, generator=gen)
    half = min(max_samples, data.n_samples // 2)
    ia, ib = perm[:half], perm[half: 2 * half]
    joint = data.joint()
    a = joint[ia]
    sub = dataclasses.replace(data, x=data.x[ib], y=None if data.y is None else data.y[ib])
    tests: list[TwoSampleTest] = []
    screen = min(n_permutations, int(2 / alpha)) if alpha > 0 else n_permutations
    for c, g in enumerate(cands):
        moved = sub.transform(g)
        test = mmd_test(a, moved, n_permutations=screen, seed=base + c)
        if not test.rejects(alpha) and screen < n_permutations:  # screened in: full test
            test = mmd_test(a, moved, n_permutations=n_permutations, seed=base + c)
        tests.append(test)
    accepted = [c for c, t in enumerate(tests) if not t.rejects(alpha)]
    rejected = [c for c, t in enumerate(tests) if t.rejects(alpha)]
    accepted.sort(key=lambda c: tests[c].statistic)
    rejected.sort(key=lambda c: tests[c].statistic)
    maps = cands[accepted] if accepted else torch.zeros(0, data.n, data.n, dtype=torch.float64)
    scores = {"n_candidates": float(len(cands)), "n_accepted": float(len(accepted))}
    if data.reference is not None:
        found = all(any(torch.allclose(r, m, atol=1e-8) for m in maps) for r in data.reference)
        scores["reference_found"] = float(found)
    best = tests[accepted[0]] if accepted else min(tests, key=lambda t: t.statistic)
    control = tests[rejected[0]] if rejected else None
    if control is None:
        label, reason = "inconclusive", (f"no candidate was rejected at level {alpha}: the test "
                                         "cannot tell symmetries from non-symmetries here")
    elif not accepted:
        label, reason = "no symmetry", f"all {len(cands)} candidates were rejected at level {alpha}"
    else:
        shown = ", ".join(str(cands[c].tolist()) for c in accepted[:3])
        label = "symmetry found"
        reason = (f"{len(accepted)} of {len(cands)} maps leave the data law unchanged "
                  f"(best p = {best.p_value:.3g}): {shown}; closest rejected p = {control.p_value:.3g}")
    verdict = Verdict(symmetric=label == "symmetry found", label=label, reason=reason,
                      sustained_step=None)
    return DiscoveryResult(method="discrete", generators=maps, history=History(), scores=scores,
                           two_sample=best, control=control, verdict=verdict,
                           reference=data.reference, seconds=time.perf_counter() - began,
                           seed=base)
