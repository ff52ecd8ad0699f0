"""Catalogue right-hand sides traced into tapes, for the compiled integration kernels.

dysts' own code for a flow or a map runs once with placeholders (:mod:`labkit.core._tape`)
for the state, the time and every parameter, so one compiled kernel per system serves all
parameter values, parameter batches included. Parameters are laid out in the order of
:attr:`System.parameters`, a vector or matrix parameter taking one slot per entry.

A system whose code branches on a value, or is one of labkit's hand ports (torch code,
not dysts' NumPy code), does not trace; :func:`trace_system` says why and the
integrators run it eagerly.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from labkit.core._tape import (
    Tape,
    Traced,
    TraceError,
    Var,
    flatten_outputs,
    new_inputs,
    trace_numpy,
)
from labkit.core.kernels import KernelSource
from labkit.dynamics.catalogue._catalogue import _dysts, _metadata, _own_members

__all__ = ["kernel_source_for", "param_layout", "param_matrix", "trace_system"]


def _max(*args: Any, **kwargs: Any) -> Any:
    if len(args) == 2 and any(isinstance(a, Var | np.ndarray) for a in args):
        return trace_numpy.maximum(*args)
    return max(*args, **kwargs)


def _min(*args: Any, **kwargs: Any) -> Any:
    if len(args) == 2 and any(isinstance(a, Var | np.ndarray) for a in args):
        return trace_numpy.minimum(*args)
    return min(*args, **kwargs)


_SHIMS = {"np": trace_numpy, "max": _max, "min": _min}


def param_layout(name: str) -> list[tuple[str, tuple[int, ...]]]:
    """``(parameter, shape)`` in slot order: ``()`` for a scalar, ``(k,)`` or ``(r, c)``."""
    layout = []
    for key, value in _metadata()[name]["parameters"].items():
        layout.append((key, tuple(np.shape(value))))
    return layout


def _placeholders(layout: list[tuple[str, tuple[int, ...]]], slots: list[Var]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    i = 0
    for key, shape in layout:
        size = int(np.prod(shape)) if shape else 1
        if shape:
            arr = np.empty(size, dtype=object)
            arr[:] = slots[i:i + size]
            values[key] = arr.reshape(shape)
        else:
            values[key] = slots[i]
        i += size
    return values


def _sum(terms: list[Any]) -> Any:
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def _bickley_jet(state: list[Var], t: Var, p: Mapping[str, Any]) -> tuple[Any, ...]:
    # labkit's torch port (_ports._bickley_jet), one mode at a time
    yy, x, z = state
    np_ = trace_numpy
    sech2 = np_.cosh(yy / p["ell"]) ** -2
    phases = [k * (x - z * sigma) for k, sigma in zip(p["k"], p["sigma"], strict=True)]
    cos_sum = _sum([np_.cos(ph) * eps for ph, eps in zip(phases, p["eps"], strict=True)])
    sin_sum = _sum([eps * k * np_.sin(ph)
                    for ph, eps, k in zip(phases, p["eps"], p["k"], strict=True)])
    dx = p["u"] * sech2 * (-1 - 2 * cos_sum * np_.tanh(yy / p["ell"]))
    dy = p["ell"] * p["u"] * sech2 * sin_sum
    return dy, dx, p["omega"] * 1.0


def _interior_squirmer(state: list[Var], t: Var, p: Mapping[str, Any]) -> tuple[Any, ...]:
    r, th, tt = state
    np_ = trace_numpy
    tau = p["tau"]
    phase = 0.5 + 0.5 * np_.tanh(tau * 20 * np_.sin(2 * np.pi * tt / tau))
    vr_terms, vth_terms = [], []
    for i, (a0, g0) in enumerate(zip(p["a"], p["g"], strict=True)):
        n = float(i + 1)
        a, g = a0 * phase, g0 * (1 - phase)
        sin, cos, rn = np_.sin(th * n), np_.cos(th * n), r**n
        vr_terms.append((g * cos + a * sin) * n * rn * (r**2 - 1) / r)
        vth_terms.append((2 * r + (r**2 - 1) * n / r) * (a * cos - g * sin) * rn)
    return _sum(vr_terms), _sum(vth_terms) / r, 1.0


def _macarthur(state: list[Var], t: Var, p: Mapping[str, Any]) -> tuple[Any, ...]:
    # Liebig's law of the minimum, as labkit's torch port (_ports._macarthur)
    c, k, s = p["c"], p["k"], p["s"]
    n_species = len(s)
    nn, rr = state[:n_species], state[n_species:]
    mu = []
    for j in range(n_species):
        uptake = [p["r"] * rr[i] / (k[i][j] + rr[i]) for i in range(len(rr))]
        low = uptake[0]
        for u in uptake[1:]:
            low = trace_numpy.minimum(low, u)
        mu.append(low)
    dn = [nn[j] * (mu[j] - p["m"]) for j in range(n_species)]
    flux = [mu[j] * nn[j] for j in range(n_species)]
    dr = [p["d"] * (s[i] - rr[i]) - _sum([flux[j] * c[i][j] for j in range(n_species)])
          for i in range(len(rr))]
    return (*dn, *dr)


#: NumPy-shaped twins of labkit's torch ports, for tracing (the tests compare them with
#: the ports through the compiled and eager integrators).
_TRACEABLE_PORTS = {"BickleyJet": _bickley_jet, "InteriorSquirmer": _interior_squirmer,
                    "MacArthur": _macarthur}


@functools.cache
def trace_system(name: str) -> Traced | str:
    """The traced right-hand side of the catalogue system ``name`` (a flow's vector field
    or a map), or a one-line reason why it does not trace."""
    from labkit.dynamics.catalogue._ports import PORTED

    if name in PORTED and name not in _TRACEABLE_PORTS:
        return "a hand-written torch port, not dysts' NumPy code"
    meta = _metadata()[name]
    is_map = bool(meta.get("map"))
    dim = len(meta["initial_conditions"])
    layout = param_layout(name)
    n_params = sum(int(np.prod(s)) if s else 1 for _, s in layout)
    tape = Tape()
    state, t, slots = new_inputs(tape, dim, n_params)
    params = _placeholders(layout, slots)
    cls = getattr(_dysts("maps" if is_map else "flows"), meta.get("dysts_name", name))
    members = {} if name in _TRACEABLE_PORTS else _own_members(cls, _SHIMS)
    try:
        with np.errstate(all="ignore"):
            if name in _TRACEABLE_PORTS:
                out = _TRACEABLE_PORTS[name](state, t, params)
            elif "rhs" not in members:
                rhs = members["_rhs"].__func__
                names = list(inspect.signature(rhs).parameters)
                pnames = names[dim:] if is_map else names[names.index("t") + 1:]
                args = [params[p] for p in pnames]
                out = rhs(*state, *args) if is_map else rhs(*state, t, *args)
            else:
                proxy: Any = object.__new__(type(f"{name}Traced", (), members))
                proxy.__dict__.update(params)
                x = np.empty(dim, dtype=object)
                x[:] = state
                out = proxy.rhs(x) if is_map else proxy.rhs(x, t)
            outputs = flatten_outputs(out, tape)
    except (TraceError, TypeError, ValueError, IndexError, AttributeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    if len(outputs) != dim:
        return f"traced {len(outputs)} outputs for a {dim}-dimensional state"
    return Traced(tape=tape, outputs=tuple(outputs), n_state=dim, n_params=n_params, name=name)


def param_matrix(name: str, params: Mapping[str, Any], y: torch.Tensor) -> torch.Tensor:
    """The parameter slots as a tensor ``[*batch, P]`` (``batch`` broadcast from scalar
    tensor parameters against ``y[..., 0]``; ``[P]`` when no parameter is batched), in
    ``y``'s dtype and device.

    Raises:
        TraceError: a vector or matrix parameter is batched (the kernels take one value
            per slot and trajectory, and such batches are left to the eager path).
    """
    columns: list[torch.Tensor] = []
    batch: tuple[int, ...] = ()
    for key, shape in param_layout(name):
        value = torch.as_tensor(params[key], dtype=y.dtype, device=y.device)
        if shape:
            if tuple(value.shape) != shape:
                raise TraceError(f"parameter {key} of shape {tuple(value.shape)} is batched")
            columns.extend(value.reshape(-1).unbind(0))
        else:
            columns.append(value)
            if value.ndim:
                batch = torch.broadcast_shapes(batch, value.shape)
    if batch:
        if torch.broadcast_shapes(batch, y.shape[:-1]) != y.shape[:-1]:
            raise TraceError(f"the parameter batch {tuple(batch)} is larger than the state "
                             f"batch {tuple(y.shape[:-1])}")
        batch = y.shape[:-1]
        return torch.stack([c.expand(batch) for c in columns], dim=-1)
    if not columns:
        return torch.zeros(0, dtype=y.dtype, device=y.device)
    return torch.stack(columns)


def kernel_source_for(name: str, params: Mapping[str, Any]) -> KernelSource:
    """The :class:`KernelSource` of the system ``name`` with ``params`` (defaults merged)."""
    kind = "map" if _metadata()[name].get("map") else "flow"
    return KernelSource(traced=functools.partial(trace_system, name),
                        params=functools.partial(param_matrix, name, params), kind=kind,
                        key=f"catalogue:{name}:{_code_version()}")


@functools.cache
def _code_version() -> str:
    """dysts' version and a digest of the code that traces and prints the kernels."""
    import hashlib
    import importlib.metadata
    from pathlib import Path

    from labkit.core import _cgen, _tape

    digest = hashlib.sha256()
    for path in (_tape.__file__, _cgen.__file__, __file__):
        digest.update(Path(path).read_bytes())
    return f"dysts={importlib.metadata.version('dysts')}:{digest.hexdigest()[:16]}"
