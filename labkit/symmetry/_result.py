"""The result of a symmetry discovery and the rule that turns scores into a verdict.

A discovery is declared only when three independent pieces of evidence agree
(docs/symmetry.md, "One reading lies"):

1. **sustained score**: with a reference, the smallest principal cosine stays
   :math:`\\ge` ``threshold`` for ``window`` consecutive evaluations
   (:func:`~labkit.symmetry.sustained_crossing`);
2. **invariance**: a paired kernel two-sample test between the data and its copy
   transformed by the learned group, :math:`g = \\exp(\\sum_i w_i L_i)`, does *not* reject;
3. **control**: the same test with random generators orthogonal to the learned span and
   of the same Frobenius norms *does* reject, so the test had the power to see a non-symmetry.

Without a reference the verdict rests on (2) and (3).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import torch

from labkit.core.train import History
from labkit.errors import DivergenceError
from labkit.symmetry._algebra import invariant_metric
from labkit.symmetry._data import SymmetryData
from labkit.symmetry._plain import plain_number
from labkit.symmetry._scores import (
    TwoSampleTest,
    action_distance,
    mmd_test,
    smallest_cosine,
    sustained_crossing,
)
from labkit.symmetry._seed import Seed, generator, run_seed

__all__ = ["DiscoveryResult", "Verdict", "judge"]

#: Level of the two-sample tests.
ALPHA = 0.05

LABELS = ("symmetry found", "no symmetry", "inconclusive")


@dataclasses.dataclass(frozen=True)
class Verdict:
    """Whether a symmetry was found, in one label and one sentence.

    Attributes:
        symmetric: True only for ``label == "symmetry found"``.
        label: ``"symmetry found"``, ``"no symmetry"`` or ``"inconclusive"``.
        reason: the evidence, in words.
        sustained_step: training step from which the score stayed above threshold
            (None without a sustained crossing or a training history).
    """

    symmetric: bool
    label: str
    reason: str
    sustained_step: int | None

    def summary(self) -> str:
        """``label: reason``, one line."""
        return f"{self.label}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        """The four fields (``sustained_step`` an int or None)."""
        return {"label": self.label, "symmetric": bool(self.symmetric), "reason": self.reason,
                "sustained_step": None if self.sustained_step is None else int(self.sustained_step)}


@dataclasses.dataclass(frozen=True)
class DiscoveryResult:
    """What a discovery method found.

    Attributes:
        method: ``"liegan"``, ``"liegg"`` or ``"discrete"``.
        generators: ``[k, n, n]`` float64 learned generators (or group elements, for
            discrete search).
        history: training metrics (empty for closed-form methods).
        scores: ``cosine`` (smallest principal cosine to the reference),
            ``action_distance``, ``metric_cosine`` (invariant forms compared), the MMD
            statistics ``mmd`` and ``mmd_control``, and method-specific numbers.
        two_sample: data against data transformed by the learned group.
        control: data against data transformed by random generators of the same norms.
        verdict: see :class:`Verdict`.
        reference: the true generators, when known.
        singular_values: LieGG's singular values of the polarization matrix, ascending.
        seconds: wall-clock seconds the discovery took.
        status: ``"finished"``, ``"stopped"`` or ``"diverged"`` (as in
            :class:`~labkit.core.train.RunResult`; closed-form methods always finish).
        message: why training ended early, in words (empty otherwise).
        seed: the int the run was derived from: an int ``seed`` as given; for a
            :class:`torch.Generator`, the int drawn from it; for None, the fresh one. Passing
            it back as ``seed`` (with the same data and settings) repeats the run. None when
            a result was built without one.
    """

    method: str
    generators: torch.Tensor
    history: History
    scores: dict[str, float]
    two_sample: TwoSampleTest | None
    control: TwoSampleTest | None
    verdict: Verdict
    reference: torch.Tensor | None
    singular_values: torch.Tensor | None = None
    seconds: float = 0.0
    status: str = "finished"
    message: str = ""
    seed: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """What a report records, as plain JSON-safe values.

        ``method``, ``verdict`` (the label), ``symmetric``, ``reason``, ``sustained_step``,
        ``n_generators`` and ``n`` (the generators are ``[n_generators, n, n]``),
        ``steps`` (training steps recorded), ``seconds``, ``status``, ``message`` and
        ``seed`` (see :attr:`seed`: the int that repeats the run);
        every entry of :attr:`scores`; ``p_invariance`` and ``p_control``, the p-values of
        :attr:`two_sample` and :attr:`control`. Non-finite numbers and missing tests
        are None. The tensors (generators, reference, singular values) stay on the result.

        Example:
            >>> from labkit.symmetry import LieGANConfig, liegan, so2_invariant
            >>> res = liegan(so2_invariant(500), LieGANConfig(steps=20, n_permutations=20),
            ...              device="cpu")
            >>> row = res.as_dict()
            >>> row["method"], row["n_generators"], row["steps"], row["status"]
            ('liegan', 1, 20, 'finished')
            >>> import json; _ = json.dumps(row)
        """
        out: dict[str, Any] = {
            "method": self.method,
            "verdict": self.verdict.label,
            "symmetric": bool(self.verdict.symmetric),
            "reason": self.verdict.reason,
            "sustained_step": self.verdict.as_dict()["sustained_step"],
            "n_generators": int(self.generators.shape[0]),
            "n": int(self.generators.shape[-1]),
            "steps": len(self.history),
            "seconds": plain_number(self.seconds),
            "status": self.status,
            "message": self.message,
            "seed": None if self.seed is None else int(self.seed),
        }
        out.update({str(k): plain_number(v) for k, v in self.scores.items()})
        for key, test in (("p_invariance", self.two_sample), ("p_control", self.control)):
            out[key] = None if test is None else plain_number(test.p_value)
        return out

    def summary(self) -> str:
        """A few lines for people: verdict, scores, tests."""
        lines = [f"{self.method}: {self.verdict.label} -- {self.verdict.reason}",
                 f"  generators: {tuple(self.generators.shape)}, {self.seconds:.2f} s"]
        if self.scores:
            lines.append("  scores: " + ", ".join(f"{k}={v:.4g}" for k, v in self.scores.items()))
        for name, test in (("invariance", self.two_sample), ("control", self.control)):
            if test is not None:
                lines.append(f"  {name} test: statistic {test.statistic:.3g}, p = {test.p_value:.3g}")
        if self.singular_values is not None:
            sv = ", ".join(f"{v:.3g}" for v in self.singular_values.tolist()[:12])
            lines.append(f"  singular values (ascending): {sv}")
        return "\n".join(lines)


def _metric_cosine(gens: torch.Tensor, ref: torch.Tensor) -> float:
    m_learned, _ = invariant_metric(gens)
    m_ref, _ = invariant_metric(ref)
    return float((m_learned * m_ref).sum().abs())


def _span_basis(flat: torch.Tensor) -> torch.Tensor:
    u, s, _ = torch.linalg.svd(flat.T, full_matrices=False)
    return u[:, s > 1e-10 * s.max().clamp_min(1e-300)]


def transformed_halves(
    data: SymmetryData, generators: torch.Tensor, *, coeff_scale: float, seed: Seed,
    integer: bool = False, max_samples: int = 1000,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(X, g X, g_ctrl X)``: up to ``max_samples`` joint samples, the same moved by the
    learned group and by a control group: random generators orthogonal to the learned
    span, of the same Frobenius norms (standardised by the data's per-feature spread)."""
    gen = generator(seed)
    joint = data.joint()
    scale = joint.std(0).clamp_min(1e-12)
    idx = torch.randperm(data.n_samples, generator=gen)[:max_samples]
    gens = generators.to(torch.float64)
    norms = gens.flatten(1).norm(dim=1)
    ctrl = torch.randn(gens.shape, generator=gen, dtype=torch.float64).flatten(1)
    q = _span_basis(gens.flatten(1))
    ctrl = (ctrl - (ctrl @ q) @ q.T).reshape(gens.shape)  # off the learned span
    ctrl = ctrl / ctrl.flatten(1).norm(dim=1)[:, None, None] * norms.clamp_min(1e-12)[:, None, None]
    w = torch.randn(len(idx), gens.shape[0], generator=gen, dtype=torch.float64) * coeff_scale
    if integer:
        w = torch.round(w)
    sub = dataclasses.replace(data, x=data.x[idx], y=None if data.y is None else data.y[idx])
    moved = sub.transform(torch.linalg.matrix_exp(torch.einsum("bk,kij->bij", w, gens)))
    moved_ctrl = sub.transform(torch.linalg.matrix_exp(torch.einsum("bk,kij->bij", w, ctrl)))
    return joint[idx] / scale, moved / scale, moved_ctrl / scale


#: Fraction of the coefficient scale at which a matching-but-rejected group is tested again.
SMALL_SCALE = 0.1


def _law_not_invariant(data: SymmetryData, gens: torch.Tensor, scores: dict[str, float], *,
                       coeff_scale: float, seed: int, integer: bool, n_permutations: int) -> str:
    """The reason's second half when the generators match the reference but the law moved.

    This is the case of non-compact groups (boosts, scalings): no probability law is
    invariant under them, so the data law is moved even by the true group, while the
    targets, a function of the inputs, are not. The group is tested again with
    coefficients ``SMALL_SCALE`` times smaller (``scores["p_invariance_small"]``;
    docs/symmetry.md, "Non-compact groups")."""
    a, moved, moved_ctrl = transformed_halves(data, gens, coeff_scale=SMALL_SCALE * coeff_scale,
                                              seed=seed, integer=integer)
    small = mmd_test(a, moved, n_permutations=n_permutations, seed=seed, paired=True)
    small_ctrl = mmd_test(a, moved_ctrl, n_permutations=n_permutations, seed=seed + 1, paired=True)
    scores["p_invariance_small"] = small.p_value
    scores["p_control_small"] = small_ctrl.p_value
    return (f"; yet the generators match the reference (cosine {scores['cosine']:.4f}, sustained): "
            f"the law of the inputs is not invariant at coefficient scale {coeff_scale:g}, as no law "
            f"is under a non-compact group; at scale {SMALL_SCALE * coeff_scale:g} the invariance "
            f"test gives p = {small.p_value:.3g} and the control p = {small_ctrl.p_value:.3g}")


def judge(
    data: SymmetryData,
    generators: torch.Tensor,
    *,
    method: str,
    history: History,
    coeff_scale: float = 1.0,
    integer: bool = False,
    threshold: float = 0.99,
    window: int = 5,
    cosine_values: Sequence[float] | None = None,
    cosine_steps: Sequence[int] | None = None,
    singular_values: torch.Tensor | None = None,
    seconds: float = 0.0,
    seed: Seed = 0,
    n_permutations: int = 200,
    extra_scores: dict[str, float] | None = None,
) -> DiscoveryResult:
    """Scores, the two tests and the verdict for learned ``generators`` on ``data``.

    ``cosine_values`` (with their training ``cosine_steps``) is the evaluated score
    curve; without it, the final cosine counts as one sustained reading (closed-form
    methods such as LieGG).

    ``seed`` (an int, a :class:`torch.Generator` or None) is resolved to one int ``s``
    (:attr:`DiscoveryResult.seed`; drawn from a generator, fresh for None): the subsample,
    the coefficients and the invariance test use streams seeded with ``s``, the control
    test one seeded with ``s + 1``, as they always have for an int seed.
    """
    base = run_seed(seed)
    gens = generators.detach().to("cpu", torch.float64)
    if not torch.isfinite(gens).all():
        raise DivergenceError(f"{method}: the learned generators are not finite: {gens.tolist()}")
    scores: dict[str, float] = dict(extra_scores or {})
    ref = data.reference
    sustained_step = None
    sustained = True
    if ref is not None:
        cos = smallest_cosine(gens, ref)
        scores["cosine"] = cos
        scores["action_distance"] = action_distance(gens, ref, data.x, data.rep)
        scores["metric_cosine"] = _metric_cosine(gens, ref)
        if cosine_values is not None:
            idx = sustained_crossing(cosine_values, threshold, window)
            sustained = idx is not None
            if idx is not None:
                sustained_step = int(cosine_steps[idx]) if cosine_steps is not None else idx
        else:
            sustained = cos >= threshold
    a, moved, moved_ctrl = transformed_halves(data, gens, coeff_scale=coeff_scale, seed=base,
                                              integer=integer)
    two = mmd_test(a, moved, n_permutations=n_permutations, seed=base, paired=True)
    ctrl = mmd_test(a, moved_ctrl, n_permutations=n_permutations, seed=base + 1, paired=True)
    scores["mmd"], scores["mmd_control"] = two.statistic, ctrl.statistic
    scores["p_invariance"], scores["p_control"] = two.p_value, ctrl.p_value
    if not ctrl.rejects(ALPHA):
        label = "inconclusive"
        reason = (f"the control (random generators of the same norms) is not rejected either "
                  f"(p = {ctrl.p_value:.3g}): the test cannot tell a symmetry from a non-symmetry here")
    elif two.rejects(ALPHA):
        label = "no symmetry"
        reason = (f"the data moved by the learned group differ from the data "
                  f"(MMD p = {two.p_value:.3g} < {ALPHA})")
        if ref is not None and sustained:
            reason += _law_not_invariant(data, gens, scores, coeff_scale=coeff_scale, seed=base,
                                         integer=integer, n_permutations=n_permutations)
    elif not sustained:
        label = "inconclusive"
        best = max((v for v in cosine_values or [] if not math.isnan(v)), default=scores.get("cosine", 0.0))
        reason = (f"the data look invariant (p = {two.p_value:.3g}) but the cosine to the reference "
                  f"did not stay >= {threshold} for {window} evaluations (best {best:.4f})")
    else:
        label = "symmetry found"
        parts = [f"invariance not rejected (p = {two.p_value:.3g})",
                 f"control rejected (p = {ctrl.p_value:.3g})"]
        if ref is not None:
            parts.insert(0, f"cosine {scores['cosine']:.4f} sustained >= {threshold}")
        reason = ", ".join(parts)
    verdict = Verdict(symmetric=label == "symmetry found", label=label, reason=reason,
                      sustained_step=sustained_step)
    return DiscoveryResult(method=method, generators=gens, history=history, scores=scores,
                           two_sample=two, control=ctrl, verdict=verdict, reference=ref,
                           singular_values=singular_values, seconds=seconds, seed=base)
