"""Batched fixed-step integration of ODEs on torch tensors.

Vector fields act on the last axis and broadcast over leading batch axes:
``f(t, y) -> dy/dt`` with ``y`` of shape ``[*batch, state]``. Trajectories come back as
``[*batch, time, state]`` inside a :class:`Trajectory`, which also says, per
trajectory, whether and when it diverged (a non-finite value, or ``|y|`` beyond
``bound``). Diverged trajectories are never returned as silent NaNs: their samples
after the divergence are NaN *and* flagged in ``diverged``/``diverged_at``.

The bound. An explicit ``bound=`` (one number for every trajectory) always wins. Without
one, each trajectory gets :func:`default_bound`: :data:`BOUND_FACTOR` (1e4) times the
larger of its initial state's largest component and the field's ``attractor_scale``
(every catalogue system's ``vector_field()`` carries one: the extent of its attractor,
grown with the parameters, see :meth:`labkit.dynamics.System.extent`), and never below
:data:`DEFAULT_BOUND` (1e6). So a plain function ``f`` keeps the fixed 1e6 unless it
starts beyond 100, Lorenz at ``rho = 1e6`` (bounded, ``|z|`` up to 2e6) is not flagged,
and an orbit that escapes to infinity still is: ``y' = y`` from 1 at ``t = ln 1e6``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import torch

from labkit.core.shapes import (
    BatchMask,
    FieldTime,
    PerTrajectory,
    States,
    StepCounts,
    Times,
    TimeSeries,
    VectorField,
)
from labkit.errors import ConfigError, DivergenceError, StepLimitError

if TYPE_CHECKING:
    import numpy as np
    import xarray as xr

__all__ = ["BOUND_FACTOR", "DEFAULT_BOUND", "Trajectory", "default_bound", "euler",
           "euler_step", "resolve_bound", "rk4", "rk4_step"]

#: The least default bound (in the state's own units): a trajectory beyond it counts as
#: diverged unless its field's scale or its initial state allows more
#: (:func:`default_bound`). It was the one fixed bound before bounds followed the scale.
DEFAULT_BOUND = 1.0e6

#: The default bound's multiple of a run's scale (:func:`default_bound`).
BOUND_FACTOR = 1.0e4


def default_bound(f: Any, y0: States) -> PerTrajectory:
    """The bound each trajectory of ``y0`` gets when the caller gives none, ``[*batch]``
    in ``y0``'s dtype:

    .. math:: b = \\max\\bigl(10^6,\\; 10^4 \\max(\\lVert y_0 \\rVert_\\infty,\\, s)\\bigr)

    (:data:`DEFAULT_BOUND`, :data:`BOUND_FACTOR`), with ``s`` the field's
    ``attractor_scale`` attribute (a number, or a tensor broadcasting against the batch,
    one per parameter value), 0 for a field without one.

    Why this rule. Divergence means escaping to infinity, and a bound only stands in for
    infinity, so it must lie far outside every bounded orbit the run can have: 1e4 times
    the attractor's extent, or the start if that is further out. The scale has to come
    from the system, not from the trajectory: on its way to its attractor Lorenz at
    ``rho = 1e6`` grows from ``|y| = 20`` to ``2e6`` at the rate ``sqrt(sigma rho)``, just
    as an escaping orbit grows, so no rule that watches the trajectory's growth can tell
    the two apart. Catalogue fields carry their extent at their parameters
    (:meth:`labkit.dynamics.System.extent`). The floor 1e6 keeps what was flagged before
    for every field at a scale below 100 (116 of the catalogue's 129 flows and every map
    at their defaults; the 13 others get 1e6 to 1.8e7) and for the unbounded phase
    coordinates of a few flows, whose extent says nothing; a too large bound only delays
    a flag by a few e-foldings of an escape (``ln 10 / lambda`` per decade), a too small
    one flags a bounded orbit.

    Example:
        >>> import torch
        >>> y0 = torch.tensor([[1.0, 2.0], [0.0, 300.0]], dtype=torch.float64)
        >>> default_bound(lambda t, y: -y, y0).tolist()
        [1000000.0, 3000000.0]
    """
    batch = y0.shape[:-1]
    mag = y0.detach().abs().amax(-1).to(torch.float64)
    scale = getattr(f, "attractor_scale", None)
    if scale is not None:
        s = torch.as_tensor(scale, dtype=torch.float64, device=y0.device).detach()
        try:
            s = torch.broadcast_to(s, batch)
        except RuntimeError:  # a parameter batch that is not the trajectories': the largest
            s = s.amax()
        mag = torch.maximum(mag, s)
    return (BOUND_FACTOR * mag).clamp_min(DEFAULT_BOUND).to(y0.dtype)


def resolve_bound(bound: float | None, f: Any, y0: torch.Tensor) -> torch.Tensor:
    """The bound of every trajectory of ``y0``, ``[*batch]`` in its dtype and on its device:
    ``bound`` where given (one number for all), else :func:`default_bound`."""
    if bound is None:
        return default_bound(f, y0)
    if isinstance(bound, bool) or not isinstance(bound, int | float) or not bound > 0:
        raise ConfigError(f"bound must be a number > 0 (math.inf: only non-finite values "
                          f"count) or None for the default, got {bound!r}")
    return torch.full(y0.shape[:-1], float(bound), dtype=y0.dtype, device=y0.device)


@dataclasses.dataclass(frozen=True)
class Trajectory:
    """Result of an integration.

    Attributes:
        t: sample times, ``[time]``.
        y: states, ``[*batch, time, state]``; NaN after a trajectory diverged or ran out
            of steps.
        diverged: ``[*batch]`` bool, True where the trajectory diverged (a non-finite
            state, a state beyond the bound, or, in :func:`~labkit.core.dopri5`, a step
            size collapsed at a singularity).
        diverged_at: ``[*batch]`` time of divergence (NaN where it did not diverge).
        n_steps: ``[*batch]`` accepted steps per trajectory (adaptive solvers), else None.
        out_of_steps: ``[*batch]`` bool, True where an adaptive solver used its
            ``max_steps`` attempts before the end (not a divergence); None for fixed-step
            integrators, which cannot.
        out_of_steps_at: ``[*batch]`` the time such a trajectory had reached (NaN
            elsewhere); None with ``out_of_steps``.
        max_steps: the adaptive solver's limit of attempted steps per trajectory, else
            None.
    """

    t: Times
    y: TimeSeries
    diverged: BatchMask
    diverged_at: PerTrajectory
    n_steps: StepCounts | None = None
    out_of_steps: BatchMask | None = None
    out_of_steps_at: PerTrajectory | None = None
    max_steps: int | None = None

    @property
    def n_diverged(self) -> int:
        """How many trajectories diverged."""
        return int(self.diverged.sum())

    @property
    def n_out_of_steps(self) -> int:
        """How many trajectories ran out of steps (0 for fixed-step integrators)."""
        return 0 if self.out_of_steps is None else int(self.out_of_steps.sum())

    @property
    def status(self) -> np.ndarray:
        """Per trajectory, ``[*batch]`` strings: ``"ok"`` (reached the end),
        ``"diverged"`` or ``"max_steps"`` (an adaptive solver ran out of steps)."""
        import numpy as np

        out = np.full(tuple(self.diverged.shape), "ok", dtype="<U9")
        if self.out_of_steps is not None:
            out[self.out_of_steps.cpu().numpy()] = "max_steps"
        out[self.diverged.cpu().numpy()] = "diverged"
        return out

    def raise_if_diverged(self) -> Trajectory:
        """Raise if a trajectory did not reach the end; else return self.

        Raises:
            DivergenceError: naming the first diverged trajectories and their times.
            StepLimitError: where none diverged but some ran out of steps (an adaptive
                solver's ``max_steps``): their samples after that time are NaN as well.
        """
        if self.n_diverged:
            idx = torch.nonzero(self.diverged)[:5].tolist()
            times = [float(self.diverged_at[tuple(i)]) for i in idx]
            raise DivergenceError(
                f"{self.n_diverged} of {self.diverged.numel()} trajectories diverged; "
                f"first at batch index/time {list(zip(idx, times, strict=True))}"
            )
        if self.n_out_of_steps:
            assert self.out_of_steps is not None and self.out_of_steps_at is not None
            idx = torch.nonzero(self.out_of_steps)[:5].tolist()
            times = [float(self.out_of_steps_at[tuple(i)]) for i in idx]
            raise StepLimitError(
                f"{self.n_out_of_steps} of {self.out_of_steps.numel()} trajectories ran out "
                f"of steps (max_steps={self.max_steps}) before t = {float(self.t[-1]):.6g}; "
                f"first at batch index/time {list(zip(idx, times, strict=True))}: raise "
                "max_steps or loosen rtol/atol (this is not a divergence)"
            )
        return self

    def to_xarray(
        self,
        var_names: Sequence[str] | None = None,
        batch_dims: Sequence[str] | None = None,
        coords: dict[str, Any] | None = None,
    ) -> xr.Dataset:
        """An :class:`xarray.Dataset` with dims ``(*batch_dims, "time", "var")``.

        ``batch_dims`` defaults to ``("ic",)`` for one batch axis and ``ic0, ic1, ...``
        otherwise. ``diverged`` and ``diverged_at`` (and ``out_of_steps`` from an adaptive
        solver) are data variables over the batch dims.
        """
        import xarray as xr

        nbatch = self.y.ndim - 2
        if batch_dims is None:
            batch_dims = ("ic",) if nbatch == 1 else tuple(f"ic{i}" for i in range(nbatch))
        if len(batch_dims) != nbatch:
            raise ConfigError(f"batch_dims must name {nbatch} axes, got {list(batch_dims)}")
        nvar = self.y.shape[-1]
        if var_names is None:
            var_names = [f"x{i}" for i in range(nvar)]
        if len(var_names) != nvar:
            raise ConfigError(f"var_names must have {nvar} names, got {list(var_names)}")
        dims = (*batch_dims, "time", "var")
        all_coords = {"time": self.t.cpu().numpy(), "var": list(var_names), **(coords or {})}
        return xr.Dataset(
            {
                "y": (dims, self.y.detach().cpu().numpy()),
                "diverged": (tuple(batch_dims), self.diverged.cpu().numpy()),
                "diverged_at": (tuple(batch_dims), self.diverged_at.cpu().numpy()),
                **({} if self.out_of_steps is None else
                   {"out_of_steps": (tuple(batch_dims), self.out_of_steps.cpu().numpy())}),
            },
            coords=all_coords,
        )


def rk4_step(f: VectorField, t: FieldTime, y: States, dt: float) -> States:
    """One classical RK4 step of size ``dt`` from ``(t, y)`` (batched like ``f``).

    ``y`` is ``[*batch, state]``; ``t`` is 0-d or one time per trajectory."""
    k1 = f(t, y)
    k2 = f(t + dt / 2, y + (dt / 2) * k1)
    k3 = f(t + dt / 2, y + (dt / 2) * k2)
    k4 = f(t + dt, y + dt * k3)
    return y + (dt / 6) * (k1 + 2 * k2 + 2 * k3 + k4)


def rk4(
    f: VectorField,
    y0: States,
    t_span: tuple[float, float],
    dt: float,
    *,
    save_every: int = 1,
    bound: float | None = None,
    on_divergence: Literal["flag", "raise"] = "flag",
    fast: Literal["auto", "compiled", "eager", "graph"] = "auto",
    out_dtype: torch.dtype | None = None,
) -> Trajectory:
    """Classical 4th-order Runge-Kutta with a fixed step, batched over leading axes.

    Args:
        f: vector field ``f(t, y)``; ``y`` is ``[*batch, state]``, ``t`` a 0-d tensor.
        y0: initial states ``[*batch, state]`` (dtype and device of the whole run).
        t_span: ``(t0, t1)``; ``(t1 - t0) / dt`` must be a whole number of steps.
        dt: step size (> 0).
        save_every: keep every ``save_every``-th step (the first and last are kept).
        bound: a trajectory with a component beyond this magnitude counts as diverged
            (as does a non-finite one). A number applies to every trajectory and takes
            precedence; None (the default) gives each its :func:`default_bound`:
            ``max(1e6, 1e4 * max(|y0|, scale))``, ``scale`` the field's
            ``attractor_scale`` (catalogue fields: the attractor's extent at their
            parameters), so that a plain ``f`` keeps 1e6 unless it starts beyond 100.
            The compiled and eager paths compare against the same per-trajectory bound.
        on_divergence: ``"flag"`` marks diverged trajectories in the result;
            ``"raise"`` raises :class:`DivergenceError` instead.
        fast: ``"compiled"`` runs a fused C kernel on the CPU (:mod:`labkit.core.kernels`;
            float32/float64, fields that carry a ``kernel_source``, as every catalogue
            system's ``vector_field()`` does) and, on other devices, the field printed as
            straight-line torch with the RK4 step compiled by ``torch.compile`` (one
            Triton kernel per step on CUDA; the first call compiles for seconds);
            ``"eager"`` runs the field as given, step by step; ``"graph"`` captures the
            ``save_every`` steps between two saved samples in one CUDA graph and replays
            it (CUDA only; the field must not read values back to the host); ``"auto"``
            takes the C kernel on the CPU, the printed torch field (not compiled: no
            first-call wait) on other devices, and the graph on CUDA when it is replayed
            more than a few times; else eager (with one warning when a kernel could not
            be built). The compiled
            kernel equals the eager loop to rounding (tests: 1e-12 in float64 across
            the catalogue). No mode reads values back to the host between saved
            samples (except ``on_divergence="raise"`` in eager mode, which checks once
            per sample to stop early).
        out_dtype: dtype of the saved samples; ``torch.float32`` halves the memory of a
            float64 integration (the integration itself stays in ``y0``'s dtype).

    Returns:
        A :class:`Trajectory` with ``y`` of shape ``[*batch, time, state]``.

    The global error is :math:`O(\\Delta t^4)`; ``tests/core/test_integrate.py`` measures
    the order on an exact solution and compares with scipy on Lorenz.
    """
    return _fixed_step("rk4", f, y0, t_span, dt, save_every=save_every, bound=bound,
                       on_divergence=on_divergence, fast=fast, out_dtype=out_dtype)


# Deliberately rk4's signature (a duplicate by design): the fixed-step integrators take
# the same arguments and share one implementation, _fixed_step.
def euler(
    f: VectorField,
    y0: States,
    t_span: tuple[float, float],
    dt: float,
    *,
    save_every: int = 1,
    bound: float | None = None,
    on_divergence: Literal["flag", "raise"] = "flag",
    fast: Literal["auto", "compiled", "eager", "graph"] = "auto",
    out_dtype: torch.dtype | None = None,
) -> Trajectory:
    """The explicit (forward) Euler method, ``y + dt f(t, y)``, with :func:`rk4`'s
    arguments, result, divergence handling and fast paths (the C kernel on the CPU).

    First order: the global error is :math:`O(\\Delta t)` (``tests/core/test_integrate.py``
    measures it on an exact solution). Use it for what is defined by its Euler
    discretisation (e.g. the flows behind some learned maps) or to compare schemes; for
    accuracy per cost, :func:`rk4` or :func:`labkit.core.dopri5`.
    """
    return _fixed_step("euler", f, y0, t_span, dt, save_every=save_every, bound=bound,
                       on_divergence=on_divergence, fast=fast, out_dtype=out_dtype)


def _fixed_step(
    method: str,
    f: VectorField,
    y0: torch.Tensor,
    t_span: tuple[float, float],
    dt: float,
    *,
    save_every: int,
    bound: float | None,
    on_divergence: str,
    fast: str,
    out_dtype: torch.dtype | None,
) -> Trajectory:
    """The fixed-step integration behind :func:`rk4` and :func:`euler`."""
    if not isinstance(y0, torch.Tensor) or y0.ndim < 1:
        raise ConfigError(f"y0 must be a tensor [*batch, state], got {type(y0).__name__}")
    if not (isinstance(dt, int | float) and math.isfinite(dt) and dt > 0):
        raise ConfigError(f"dt must be a finite number > 0, got {dt!r}")
    t0, t1 = (float(v) for v in t_span)
    if not t1 > t0:
        raise ConfigError(f"t_span must be increasing, got {t_span!r}")
    steps_f = (t1 - t0) / dt
    n_steps = round(steps_f)
    if abs(steps_f - n_steps) > 1e-6 * max(1.0, steps_f):
        raise ConfigError(f"(t1 - t0) / dt must be a whole number of steps, got {steps_f!r}")
    if not isinstance(save_every, int) or save_every < 1:
        raise ConfigError(f"save_every must be an int >= 1, got {save_every!r}")
    if on_divergence not in ("flag", "raise"):
        raise ConfigError(f"on_divergence must be 'flag' or 'raise', got {on_divergence!r}")
    if not torch.isfinite(y0).all():
        raise ConfigError("y0 contains non-finite values")
    bounds = resolve_bound(bound, f, y0)

    if fast not in ("auto", "compiled", "eager", "graph"):
        raise ConfigError(f"fast must be 'auto', 'compiled', 'eager' or 'graph', got {fast!r}")
    if fast == "graph" and y0.device.type != "cuda":
        raise ConfigError(f"fast='graph' needs a CUDA tensor, got y0 on {y0.device}")
    if out_dtype not in (None, y0.dtype, torch.float32):
        raise ConfigError(f"out_dtype must be None, {y0.dtype} or torch.float32, got {out_dtype!r}")

    save_at = list(range(0, n_steps + 1, save_every))
    if save_at[-1] != n_steps:
        save_at.append(n_steps)
    on_cpu = y0.device.type == "cpu"
    if fast in ("auto", "compiled") and on_cpu:
        compiled = _run_compiled(f, y0, t0, dt, save_at, bounds, out_dtype, method=method)
        if compiled is not None:
            if on_divergence == "raise":
                compiled.raise_if_diverged()
            return compiled
        if fast == "compiled":
            raise ConfigError(_why_not_compiled(f, y0))
    step: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    if fast in ("auto", "compiled", "graph") and not on_cpu:
        step = _device_step(f, y0, dt, method, compile=fast == "compiled")
        if step is None and fast == "compiled":
            raise ConfigError(_why_not_compiled(f, y0))
    if step is None:
        step = functools.partial(_STEPS[method], f, dt=dt)
    batch = y0.shape[:-1]
    out = torch.empty((*batch, len(save_at), y0.shape[-1]), dtype=out_dtype or y0.dtype,
                      device=y0.device)
    state = _State(
        y=y0.clone(),
        diverged=torch.zeros(batch, dtype=torch.bool, device=y0.device),
        diverged_at=torch.full(batch, math.nan, dtype=y0.dtype, device=y0.device),
        t=torch.zeros((), dtype=y0.dtype, device=y0.device),
    )
    out[..., 0, :] = state.y
    segment = functools.partial(_segment, step, dt=dt, bound=bounds)
    use_graph = fast == "graph" or (
        fast == "auto" and y0.device.type == "cuda" and len(save_at) > _GRAPH_MIN_SEGMENTS
    )
    replay = _capture(segment, state, save_every) if use_graph else None
    if fast == "graph" and replay is None:
        raise ConfigError("fast='graph': the vector field could not be captured in a CUDA graph")
    with torch.no_grad():
        for j in range(1, len(save_at)):
            k = save_at[j] - save_at[j - 1]
            state.t.fill_(t0 + save_at[j - 1] * dt)
            if replay is not None and k == save_every:
                replay()
            else:
                segment(state, k)
            out[..., j, :] = state.y
            if on_divergence == "raise" and bool(state.diverged.any()):
                break
    times = torch.tensor([t0 + s * dt for s in save_at], dtype=y0.dtype, device=y0.device)
    result = Trajectory(t=times, y=out, diverged=state.diverged, diverged_at=state.diverged_at)
    if on_divergence == "raise":
        result.raise_if_diverged()
    return result


def _run_compiled(f: VectorField, y0: torch.Tensor, t0: float, dt: float, save_at: list[int],
                  bound: torch.Tensor, out_dtype: torch.dtype | None, *, method: str
                  ) -> Trajectory | None:
    """The integration by a compiled kernel, or None where none applies."""
    from labkit.core.kernels import kernel_for, run_fixed

    found = kernel_for(getattr(f, "kernel_source", None), y0)
    if found is None:
        return None
    lib, params = found
    out, _, diverged, diverged_at = run_fixed(lib, params, y0, method=method, t0=t0, dt=dt,
                                              save_at=save_at, bound=bound, out_dtype=out_dtype)
    times = torch.tensor([t0 + s * dt for s in save_at], dtype=y0.dtype)
    assert out is not None
    return Trajectory(t=times, y=out, diverged=diverged, diverged_at=diverged_at)


def _why_not_compiled(f: VectorField, y0: torch.Tensor) -> str:
    source = getattr(f, "kernel_source", None)
    if source is None:
        return ("fast='compiled' needs a field with a kernel_source (a catalogue system's "
                "vector_field()), got a plain function")
    if y0.device.type == "cpu" and y0.dtype not in (torch.float32, torch.float64):
        return f"fast='compiled' runs float32/float64 on the CPU, got {y0.dtype}"
    traced = source.traced()
    if isinstance(traced, str):
        return f"fast='compiled': this system cannot be compiled ({traced})"
    return "fast='compiled': no kernel could be built here (see the warning) or the " \
           "parameters are batched in a way the kernel does not take"


#: ``fast="auto"`` captures a CUDA graph only when it will be replayed more often than this.
_GRAPH_MIN_SEGMENTS = 4


@dataclasses.dataclass
class _State:
    """The integrator's mutable state; its tensors are updated in place (graph-safe)."""

    y: torch.Tensor
    diverged: torch.Tensor
    diverged_at: torch.Tensor
    t: torch.Tensor  # 0-d: the time at the start of the current segment


def _rk4(f: VectorField, t: torch.Tensor, y: torch.Tensor, *, dt: float) -> torch.Tensor:
    return rk4_step(f, t, y, dt)


def euler_step(f: VectorField, t: FieldTime, y: States, dt: float) -> States:
    """One explicit Euler step of size ``dt`` from ``(t, y)`` (shapes as :func:`rk4_step`)."""
    return y + dt * f(t, y)


def _euler(f: VectorField, t: torch.Tensor, y: torch.Tensor, *, dt: float) -> torch.Tensor:
    return euler_step(f, t, y, dt)


_STEPS = {"rk4": _rk4, "euler": _euler}


def _device_step(f: VectorField, y0: torch.Tensor, dt: float, method: str, *, compile: bool
                 ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None:
    """The step (``method``) of a catalogue field as printed torch (compiled on request); None for
    fields without a ``kernel_source`` or that do not trace."""
    from labkit.core.kernels import torch_step

    try:
        return torch_step(getattr(f, "kernel_source", None), y0, dt, method=method,
                          compile=compile)
    except RuntimeError as exc:
        raise ConfigError(f"fast='compiled' on {y0.device}: {exc}") from exc


def _segment(step: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], state: _State, k: int,
             *, dt: float, bound: torch.Tensor) -> None:
    """Advance ``state`` by ``k`` steps, then check divergence, all in place.

    Nothing here reads a value back to the host, so one call can be captured in a CUDA
    graph and replayed: ``k`` steps cost one launch instead of ``~40 k``. A trajectory
    that went non-finite or beyond its ``bound`` (``[*batch]``, in the state's dtype, as the
    C kernel compares) is flagged with the segment's end time and its state set to NaN.
    """
    y = state.y
    for i in range(k):
        y = step(state.t + i * dt, y)
    bad = ~torch.isfinite(y).all(-1) | (y.abs() > bound[..., None]).any(-1)
    new = bad & ~state.diverged
    state.diverged_at.copy_(torch.where(new, state.t + k * dt, state.diverged_at))
    state.diverged.logical_or_(new)
    state.y.copy_(torch.where(state.diverged[..., None], torch.nan, y))


def _capture(
    segment: Callable[[_State, int], None], state: _State, k: int
) -> Callable[[], None] | None:
    """Capture ``segment(state, k)`` in a CUDA graph; None when the field cannot be captured.

    The graph reads and writes ``state``'s tensors in place, so the caller sets
    ``state.t`` and replays. Warm-up runs on a copy of the state on a side stream, as
    CUDA graph capture requires, so the real state is not advanced by the warm-up.
    """
    scratch = _State(**{f.name: getattr(state, f.name).clone() for f in dataclasses.fields(state)})
    try:
        side = torch.cuda.Stream(device=state.y.device)
        side.wait_stream(torch.cuda.current_stream(state.y.device))
        with torch.no_grad(), torch.cuda.stream(side):
            segment(scratch, k)
        torch.cuda.current_stream(state.y.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.no_grad(), torch.cuda.graph(graph):
            segment(state, k)
    except (RuntimeError, TypeError) as exc:  # a host sync or CPU tensor inside f
        warnings.warn(
            f"rk4: vector field could not be captured in a CUDA graph ({exc}); "
            "integrating eagerly",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    return graph.replay
