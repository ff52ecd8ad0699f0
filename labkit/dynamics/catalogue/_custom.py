"""A user's own flow as a :class:`~labkit.dynamics.System`, beside the catalogue's.

:func:`custom_system` wraps a plain torch vector field ``f(t, y, **parameters)`` into the
same :class:`System` the catalogue hands out, so whatever takes a catalogue system (the
attractor viewer, the Lyapunov tools through :meth:`System.vector_field`, Jacobians by
autograd) takes it too. Its parameters, initial state and step are the caller's; it has
no compiled kernel (the integrators run it eagerly in torch) and no reference invariants.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from labkit.dynamics.catalogue._catalogue import System, _metadata
from labkit.errors import ConfigError

__all__ = ["custom_system"]

#: The most state variables :func:`custom_system` takes (a bound on the checks' cost, far
#: above the catalogue's largest system, MacArthur's 10).
MAX_DIM = 10_000


@dataclasses.dataclass(frozen=True, eq=False)
class _CustomSystem(System):
    """A :class:`System` whose field is a user's callable: no compiled kernel."""

    def _kernel_source(self, merged: Mapping[str, Any]) -> Any:
        return None


def _field_name(f: Callable[..., Any]) -> str:
    name = getattr(f, "__name__", "") or type(f).__name__
    return "custom" if name == "<lambda>" else name


def custom_system(f: Callable[..., Any], *, dim: int | None = None,
                  y0: Sequence[float] | torch.Tensor | None = None, dt: float = 0.01,
                  period: float | None = None, parameters: Mapping[str, Any] | None = None,
                  name: str | None = None,
                  variables: Sequence[str] | None = None) -> System:
    r"""A flow ``dy/dt = f(t, y)`` given as a torch function, as a :class:`System`.

    Args:
        f: the vector field, ``f(t, y, **parameters) -> dy/dt``: ``t`` a scalar tensor,
            ``y`` a tensor ``[*batch, dim]`` (any leading batch axes; float64 on the CPU,
            float32 on CUDA), the result the same shape as ``y``. Written with torch
            operations on the last axis (``y[..., 0]``, ``torch.roll(y, 1, -1)``), it
            runs batched over thousands of trajectories at once.
        dim: the number of state variables; may be left out when ``y0`` is given.
        y0: the initial state ``[dim]`` (finite); default all ones.
        dt: the RK4 step (time units, ``> 0``): the finest the viewer uses, and its step
            when ``period`` is not given.
        period: the system's typical time scale (time units per oscillation), if known;
            the viewer's lengths are in periods and it takes up to ``period / 200`` as its
            step where the local error allows. ``None``: ``100 dt``.
        parameters: default values of ``f``'s keyword parameters (numbers), passed to
            ``f`` by name; a viewer shows a slider for each.
        name: the system's name, which must differ from every catalogue name; default
            ``f.__name__`` (``"custom"`` for a lambda), with ``" (own)"`` added where that
            is a catalogue name.
        variables: names of the state's components (default ``x0, x1, ...``).

    Returns:
        A :class:`System` of kind ``"flow"`` (its :meth:`System.rhs`,
        :meth:`System.vector_field` and :meth:`System.jacobian`, by autograd, work as for
        the catalogue's).

    Raises:
        ConfigError: a bad argument, or ``f`` fails, returns something other than a
            finite tensor of ``y``'s shape at ``y0``, or ignores the batch; the message
            names ``f``.

    Example:
        >>> import torch
        >>> from labkit.dynamics import custom_system
        >>> def lorenz96(t, y, F=8.0):
        ...     return (torch.roll(y, -1, -1) - torch.roll(y, 2, -1)) * torch.roll(y, 1, -1) - y + F
        >>> system = custom_system(lorenz96, y0=[8.0, 8.0, 8.0, 8.0, 8.01],
        ...                        parameters={"F": 8.0})
        >>> system.name, system.dim, system.rhs(0.0, torch.ones(7, 5)).shape
        ('lorenz96 (own)', 5, torch.Size([7, 5]))
    """
    if not callable(f):
        raise ConfigError(f"f must be a callable f(t, y) -> dy/dt, got {f!r}")
    label = name if name is not None else _field_name(f)
    if not isinstance(label, str) or not label.strip():
        raise ConfigError(f"name must be a non-empty string, got {label!r}")
    catalogue = {n.lower(): n for n in _metadata()}
    if name is None and label.lower() in catalogue:
        label = f"{label} (own)"  # a field named after the catalogue's system it varies
    if label.lower() in catalogue:
        raise ConfigError(f"the name {label!r} is the catalogue's {catalogue[label.lower()]}; "
                          "give your system another name (name=...)")
    state = _initial_state(label, dim, y0)
    n = len(state)
    if isinstance(dt, bool) or not isinstance(dt, int | float) or not math.isfinite(dt) or dt <= 0:
        raise ConfigError(f"dt must be a number > 0, got {dt!r}")
    if period is not None and (isinstance(period, bool) or not isinstance(period, int | float)
                               or not math.isfinite(period) or period <= 0):
        raise ConfigError(f"period must be a number > 0 or None, got {period!r}")
    params = dict(parameters or {})
    for key, value in params.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise ConfigError(f"parameter names must be identifiers, got {key!r}")
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value):
            raise ConfigError(f"parameter {key!r} must be a finite number, got {value!r}")
    names = tuple(variables) if variables is not None else tuple(f"x{i}" for i in range(n))
    if len(names) != n or not all(isinstance(v, str) for v in names):
        raise ConfigError(f"variables must be {n} names, got {variables!r}")

    # How a parameter batch reaches f (see the docstring): as given, or with a trailing
    # axis; found on the first batched call and kept.
    trailing: list[bool] = []

    def field(t: torch.Tensor, y: torch.Tensor, values: Mapping[str, Any]) -> torch.Tensor:
        batched = {k: v for k, v in values.items() if isinstance(v, torch.Tensor) and v.ndim}
        if not batched:
            return _checked(label, f(t, y, **values), y)
        if trailing:
            extra = {k: v[..., None] for k, v in batched.items()} if trailing[0] else {}
            return _checked(label, f(t, y, **{**values, **extra}), y)
        try:
            out = _checked(label, f(t, y, **values), y)
            trailing.append(False)
        except (ConfigError, RuntimeError):
            extra = {k: v[..., None] for k, v in batched.items()}
            out = _checked(label, f(t, y, **{**values, **extra}), y)
            trailing.append(True)
        return out

    system = _CustomSystem(
        name=label, kind="flow", dim=n, parameters=params,
        initial_condition=tuple(float(v) for v in state), dt=float(dt),
        period=None if period is None else float(period), reference={},
        citation="", description=f"the user's vector field {label!r}", nonautonomous=False,
        variables=names, override="", _field=field, _jacobian=None,
        base_extent=max(1.0, max(abs(float(v)) for v in state)),
    )
    _probe(system, f)
    return system


def _checked(label: str, out: Any, y: torch.Tensor) -> torch.Tensor:
    """``f``'s result as the catalogue's fields give theirs, ``[state, *batch]`` (the
    :class:`System` puts it back to ``[*batch, state]``), once it has ``y``'s shape."""
    try:
        fits = isinstance(out, torch.Tensor) and len(out.shape) <= len(y.shape) \
            and torch.broadcast_shapes(out.shape, y.shape) == y.shape
    except RuntimeError:  # shapes that do not broadcast
        fits = False
    if not fits:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ConfigError(f"the vector field {label!r} must return a tensor of the state's "
                          f"shape {tuple(y.shape)}, got {got}")
    return out.expand(y.shape).movedim(-1, 0)


def _initial_state(label: str, dim: int | None, y0: Any) -> list[float]:
    if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int)
                            or not 1 <= dim <= MAX_DIM):
        raise ConfigError(f"dim must be an int in [1, {MAX_DIM}], got {dim!r}")
    if y0 is None:
        if dim is None:
            raise ConfigError(f"{label!r}: give the state's dimension (dim=...) or an initial "
                              "state (y0=...)")
        return [1.0] * dim
    try:
        state = [float(v) for v in torch.as_tensor(y0, dtype=torch.float64).reshape(-1)]
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"y0 must be a sequence of numbers, got {y0!r}") from exc
    if not state or not all(math.isfinite(v) for v in state):
        raise ConfigError(f"y0 must be a non-empty sequence of finite numbers, got {y0!r}")
    if dim is not None and len(state) != dim:
        raise ConfigError(f"y0 has {len(state)} values but dim is {dim}")
    if len(state) > MAX_DIM:
        raise ConfigError(f"y0 has {len(state)} values; at most {MAX_DIM}")
    return state


def _probe(system: System, f: Callable[..., Any]) -> None:
    """Call the field once at the initial state, alone and in a batch of two, so that a
    field that fails, returns the wrong shape or non-finite values, or mixes the batch
    up is named now rather than deep inside an integration."""
    y = system.default_state()
    batch = torch.stack([y, y + 0.5])
    try:
        one = system.rhs(0.0, y[None])
        two = system.rhs(0.0, batch)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"the vector field {system.name!r} ({f!r}) failed on a state of "
                          f"shape [batch, {system.dim}]: {type(exc).__name__}: {exc}") from exc
    if not torch.isfinite(one).all():
        raise ConfigError(f"the vector field {system.name!r} is not finite at y0 = "
                          f"{list(system.initial_condition)}: {one[0].tolist()}")
    alone = system.rhs(0.0, batch[1:])
    if not torch.allclose(two[:1], one, rtol=1e-6, atol=1e-9, equal_nan=True) \
            or not torch.allclose(two[1:], alone, rtol=1e-6, atol=1e-9, equal_nan=True):
        raise ConfigError(f"the vector field {system.name!r} mixes the batch: each state "
                          "y[i] must give its own dy/dt[i] (act on the last axis, e.g. "
                          "y[..., 0])")
