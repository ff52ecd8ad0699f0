"""What the symmetry dashboard shows, as pure functions of arrays (no widget toolkit).

Each function turns a piece of a symmetry-discovery run into a JSON-ready payload (or a
float32 buffer) for ``widgets/symmetry.js``, and is tested on its own:

* :func:`heatmap_payload`: learned generators beside the ground truth, each scaled to unit
  largest entry and sign-aligned with its best-matching reference, with a cosine score.
* :func:`trace_payload`: the losses, regularizers and the cosine to the truth per step,
  thinned for the browser, with the first *sustained* crossing of the threshold.
* :func:`orbit_paths` / :func:`orbit_payload`: data points moved along
  :math:`x(t) = \\exp(tL)\\,x` for a grid of :math:`t`.
* :func:`equivariance_curve`: a model's invariance error under :math:`g = \\exp(tL)` as a
  function of the transformation size :math:`t`.
* :func:`spectrum_payload`: LieGG's singular values with the largest gap marked.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from labkit.core.config import check_int
from labkit.errors import ConfigError
from labkit.symmetry import LieAlgebra, LieGroup, Rep, equivariance_error
from labkit.widgets._toolkits import finite_or_none

__all__ = [
    "TRACE_METRICS",
    "align_generators",
    "equivariance_curve",
    "generator_scores",
    "heatmap_payload",
    "orbit_at",
    "orbit_paths",
    "orbit_payload",
    "spectrum_payload",
    "trace_payload",
    "unit_generator",
]

#: The GAN-health metrics the dashboard draws (a trainer's step returns them).
TRACE_METRICS = ("loss_d", "loss_g", "reg_ortho", "reg_nontrivial")
#: Frobenius norm of a unit generator: that of the so(2) generator [[0, -1], [1, 0]], whose
#: one-parameter group has period 2 pi.
UNIT_NORM = math.sqrt(2.0)


def _as_array(a: Any, name: str) -> np.ndarray:
    arr = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    given = arr.shape
    arr = arr.astype(np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1] != arr.shape[2]:
        raise ConfigError(f"{name} must be matrices [k, n, n] or one [n, n], got shape {given}")
    return arr


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Signed Frobenius cosine ``<a, b> / (|a| |b|)`` (0 when either is zero)."""
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return float(np.sum(a * b) / (na * nb)) if na > 0 and nb > 0 else 0.0


def generator_scores(generators: Any, reference: Any | None) -> list[float | None]:
    """For each learned generator, the cosine of its angle to the span of the reference
    generators (Frobenius inner product; 1 when it lies in the true algebra, sign-invariant);
    ``None`` for each when there is no reference."""
    from labkit.symmetry import smallest_cosine

    gens = _as_array(generators, "generators")
    if reference is None:
        return [None] * len(gens)
    ref = _as_array(reference, "reference")
    if ref.shape[1:] != gens.shape[1:]:
        raise ConfigError(f"generators {gens.shape[1:]} and reference {ref.shape[1:]} differ "
                          "in matrix size")
    ref_t = torch.as_tensor(ref)
    return [smallest_cosine(torch.as_tensor(g[None]), ref_t) for g in gens]


def align_generators(generators: Any, reference: Any | None = None) -> np.ndarray:
    """Each generator scaled to largest absolute entry 1 and, given a reference, given the
    sign of its best-matching reference generator (the pictures then compare directly)."""
    gens = _as_array(generators, "generators").copy()
    ref = None if reference is None else _as_array(reference, "reference")
    for i, g in enumerate(gens):
        peak = float(np.abs(g).max())
        if peak > 0:
            g /= peak
        if ref is not None:
            cosines = [_cosine(g, r) for r in ref]
            if cosines[int(np.argmax(np.abs(cosines)))] < 0:
                g *= -1
        gens[i] = g
    return gens


def heatmap_payload(generators: Any, reference: Any | None = None, *,
                    threshold: float = 0.99, labels: Sequence[str] | None = None
                    ) -> dict[str, Any]:
    """The generator heatmaps: ``learned`` and ``reference`` as nested lists ``[k][n][n]``
    (scaled to largest entry 1 and sign-aligned), ``scores`` (each generator's cosine to
    the reference span, or None), ``score`` (the smallest principal cosine of the whole
    set, the trainer's score), ``passed`` (score >= threshold) and axis ``labels``."""
    gens = _as_array(generators, "generators")
    ref = None if reference is None else _as_array(reference, "reference")
    scores = generator_scores(gens, ref)
    if ref is None:
        score = None
    else:
        from labkit.symmetry import smallest_cosine

        score = smallest_cosine(torch.as_tensor(gens), torch.as_tensor(ref))
    n = gens.shape[1]
    names = list(labels) if labels is not None else [f"x{i}" for i in range(n)]
    if len(names) != n:
        raise ConfigError(f"labels must name the {n} coordinates, got {len(names)}")
    return {
        "n": n,
        "learned": align_generators(gens, ref).round(6).tolist(),
        "reference": [] if ref is None else align_generators(ref).round(6).tolist(),
        "scores": scores,
        "score": score,
        "passed": [s is not None and s >= threshold for s in scores],
        "threshold": float(threshold),
        "labels": names,
    }


def unit_generator(generator: Any) -> torch.Tensor:
    """``generator`` ``[n, n]`` scaled to Frobenius norm sqrt(2), so that a rotation
    generator closes its orbit at ``t = 2 pi``."""
    g = torch.as_tensor(generator, dtype=torch.float64).cpu()
    if g.ndim != 2 or g.shape[0] != g.shape[1]:
        raise ConfigError(f"generator must be one matrix [n, n], got shape {tuple(g.shape)}")
    norm = float(torch.linalg.norm(g))
    if not math.isfinite(norm) or norm == 0:
        raise ConfigError(f"generator must be finite and non-zero, got norm {norm}")
    return g * (UNIT_NORM / norm)


def _elements(generator: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
    """``exp(t L)`` for each ``t``: ``[T, n, n]``."""
    return torch.linalg.matrix_exp(ts[:, None, None] * generator[None])


def orbit_paths(rep: Rep, x: Any, generator: Any, ts: Sequence[float] | np.ndarray) -> np.ndarray:
    """Points moved along the one-parameter group: ``out[j, p] = rep(exp(ts[j] L)) x[p]``.

    Args:
        rep: how an ``n x n`` element acts on a data point (``rep.act(g, x)``).
        x: ``[P, D]`` data points.
        generator: ``L``, ``[n, n]`` (used as given: scale it with :func:`unit_generator`).
        ts: the group parameters.

    Returns:
        ``[T, P, D]`` float64.
    """
    pts = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    if pts.ndim != 2:
        raise ConfigError(f"x must be points [P, D], got shape {tuple(pts.shape)}")
    L = torch.as_tensor(generator, dtype=torch.float64).cpu()
    t = torch.as_tensor(np.asarray(ts, dtype=np.float64))
    g = _elements(L, t)  # [T, n, n]
    n_t, n_p = len(t), pts.shape[0]
    moved = rep.act(g.repeat_interleave(n_p, dim=0), pts.repeat(n_t, 1))
    return moved.reshape(n_t, n_p, -1).numpy()


def orbit_at(rep: Rep, x: Any, generator: Any, t: float) -> np.ndarray:
    """``rep(exp(t L)) x`` for one ``t``: ``[P, D]``."""
    return orbit_paths(rep, x, generator, [float(t)])[0]


def orbit_payload(rep: Rep, x: Any, generator: Any, *, t_max: float = math.pi,
                  n_t: int = 73, axes: Sequence[int] = (0, 1),
                  labels: Sequence[str] | None = None) -> tuple[dict[str, Any], bytes]:
    """The orbit explorer's data: the paths of :func:`orbit_paths` over ``n_t`` values of
    ``t`` evenly in ``[-t_max, t_max]``, projected on two coordinates ``axes``.

    Returns:
        ``(meta, buffer)``: ``meta`` holds ``ts``, ``shape`` ``[T, P]``, ``axes``,
        axis ``labels`` and ``bounds`` ``[xmin, xmax, ymin, ymax]``; ``buffer`` the float32
        positions ``[T, P, 2]`` as bytes.
    """
    check_int("n_t", n_t, least=2)
    if not (math.isfinite(t_max) and t_max > 0):
        raise ConfigError(f"t_max must be a positive number, got {t_max!r}")
    ts = np.linspace(-t_max, t_max, n_t)
    paths = orbit_paths(rep, x, generator, ts)
    d = paths.shape[-1]
    axes = [int(a) for a in axes]
    if len(axes) != 2 or not all(0 <= a < d for a in axes) or axes[0] == axes[1]:
        raise ConfigError(f"axes must be two different coordinates in [0, {d}), got {axes}")
    proj = paths[..., axes].astype(np.float32)
    finite = np.isfinite(proj).all(axis=-1)
    shown = proj[finite] if finite.any() else np.zeros((1, 2), np.float32)
    lo, hi = shown.min(axis=0), shown.max(axis=0)
    names = list(labels) if labels is not None else [f"x{i}" for i in range(d)]
    meta = {
        "ts": [float(v) for v in ts],
        "shape": [int(paths.shape[0]), int(paths.shape[1])],
        "axes": axes,
        "labels": [names[a] for a in axes],
        "bounds": [float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])],
    }
    return meta, np.nan_to_num(proj, nan=0.0, posinf=0.0, neginf=0.0).tobytes()


def equivariance_curve(model: Callable[[torch.Tensor], torch.Tensor], rep: Rep, x: Any,
                       generators: Mapping[str, Any], *, t_max: float = math.pi,
                       n_t: int = 25, out_rep: Rep | None = None) -> dict[str, Any]:
    """Invariance (or, with ``out_rep``, equivariance) error of ``model`` versus the size
    ``t`` of the transformation ``g = exp(t L)``, for each named generator.

    The error at ``t`` is :func:`labkit.symmetry.equivariance_error` with that one element
    acting on every sample, averaged (``mean``) and maximised (``max``) over samples, and
    divided by the largest ``|model(x)|`` (``scale``) so curves of different models compare.

    Returns:
        ``{"t": [...], "scale": s, "curves": {name: {"mean": [...], "max": [...]}}}``.
    """
    check_int("n_t", n_t, least=2)
    pts = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    ts = np.linspace(0.0, t_max, n_t)
    with torch.no_grad():
        out = model(pts)
        scale = float(torch.as_tensor(out).abs().max()) or 1.0
        curves: dict[str, Any] = {}
        for name, generator in generators.items():
            L = unit_generator(generator)
            group = LieGroup(LieAlgebra(name, L[None]))
            mean, worst = [], []
            for g in _elements(L, torch.as_tensor(ts)):
                err = equivariance_error(model, group, pts, rep, out_rep,
                                         g=g.expand(pts.shape[0], -1, -1))
                mean.append(finite_or_none(err.mean() / scale))
                worst.append(finite_or_none(err.max() / scale))
            curves[name] = {"mean": mean, "max": worst}
    return {"t": [float(v) for v in ts], "scale": scale, "curves": curves}


def spectrum_payload(singular_values: Any, *, n_symmetries: int | None = None
                     ) -> dict[str, Any]:
    """LieGG's singular values (ascending) and the gap that separates the symmetries (the
    ``k`` smallest, near zero) from the rest.

    ``gap`` is ``k``: given (``n_symmetries``), or else where the ratio of consecutive
    values is largest. ``ratio`` is ``values[k] / values[k - 1]``.
    """
    s = np.sort(np.abs(np.asarray(singular_values, dtype=np.float64).ravel()))
    if s.size == 0:
        return {"values": [], "gap": None, "ratio": None}
    floor = max(float(s.max()) * 1e-16, 1e-300)
    if n_symmetries is None:
        if s.size < 2:
            k = None
        else:
            logs = np.log(np.maximum(s, floor))
            k = int(np.argmax(np.diff(logs))) + 1
    else:
        check_int("n_symmetries", n_symmetries, least=0)
        k = n_symmetries if 0 < n_symmetries < s.size else None
    ratio = None if k is None else finite_or_none(s[k] / max(s[k - 1], floor))
    return {"values": [float(v) for v in s], "gap": k, "ratio": ratio}


def _thin(n: int, max_points: int) -> np.ndarray:
    """Indices of at most ``max_points`` of ``n`` points, evenly, always with the last."""
    if n <= max_points:
        return np.arange(n)
    idx = np.unique(np.linspace(0, n - 1, max_points).round().astype(int))
    return idx


def trace_payload(snapshot: Mapping[str, Any], *, threshold: float = 0.99,
                  window: int = 5, max_points: int = 400,
                  crossing: Callable[[Sequence[float], float, int], int | None] | None = None
                  ) -> dict[str, Any]:
    """The convergence and GAN-health traces of a training history.

    Args:
        snapshot: :meth:`labkit.core.train.History.snapshot` (``steps``, ``metrics``).
        threshold, window: the sustained-crossing rule for the ``cosine`` evaluations.
        max_points: at most this many points per trace reach the browser.
        crossing: ``crossing(values, threshold, window)`` -> index of the first sustained
            crossing or None (default: :func:`labkit.symmetry.sustained_crossing`).

    Returns:
        ``{"steps": [...], "<metric>": [...] for TRACE_METRICS, "cosine_steps": [...],
        "cosine": [...], "threshold", "window", "sustained_step" (step or None),
        "last_step", "last"}`` with None for missing values.
    """
    check_int("max_points", max_points, least=2)
    steps = [int(s) for s in snapshot.get("steps", [])]
    metrics = snapshot.get("metrics", {})
    idx = _thin(len(steps), max_points)
    out: dict[str, Any] = {"steps": [steps[i] for i in idx]}
    for name in TRACE_METRICS:
        values = metrics.get(name)
        out[name] = [None] * len(idx) if values is None else [finite_or_none(values[i]) for i in idx]
    cos = metrics.get("cosine") or []
    evaluated = [(steps[i], float(v)) for i, v in enumerate(cos) if math.isfinite(float(v))]
    cos_steps = [s for s, _ in evaluated]
    cos_values = [v for _, v in evaluated]
    if crossing is None:
        from labkit.symmetry import sustained_crossing as crossing
    hit = crossing(cos_values, threshold, window) if cos_values else None
    keep = _thin(len(evaluated), max_points)
    out.update({
        "cosine_steps": [cos_steps[i] for i in keep],
        "cosine": [cos_values[i] for i in keep],
        "threshold": float(threshold),
        "window": int(window),
        "sustained_step": None if hit is None else cos_steps[int(hit)],
        "last_step": steps[-1] if steps else None,
        "last": {k: finite_or_none(v[-1]) for k, v in metrics.items()} if steps else {},
    })
    return out
