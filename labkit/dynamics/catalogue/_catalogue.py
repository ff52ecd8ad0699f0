"""The catalogue of chaotic flows: dysts' systems as batched torch vector fields.

The data (parameters, initial conditions, time steps, periods, reference invariants,
citations) are dysts' metadata, read from the installed ``dysts`` package, with labkit's
few cited corrections on top (:data:`OVERRIDES_FILE`: Lorenz's exact ``beta = 8/3``
where dysts rounds it to 2.667, and the literature's exponent). The vector
fields are dysts' own right-hand sides, executed with :data:`torch_numpy` standing in
for NumPy so that they act on torch tensors batched over any leading axes (and over
parameter batches); the few that need more than that are ported by hand in
:mod:`labkit.dynamics.catalogue._ports`. Where dysts writes a flow's Jacobian by hand (``_jac``),
that code runs the same way and serves :meth:`System.jacobian`, once the tests have
checked it against autograd and finite differences.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib
import importlib.util
import inspect
import json
import math
import re
import types
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Float
from torch import Tensor

from labkit.core.shapes import FieldTime, States
from labkit.dynamics.catalogue._torchnp import torch_numpy
from labkit.errors import ConfigError, DataError

if TYPE_CHECKING:
    from labkit.core.integrate import Trajectory

__all__ = ["ANALYTIC_JACOBIAN_EXCLUDED", "JACOBIAN_METHODS", "OVERRIDES_FILE", "UNSUPPORTED",
           "System", "get_system", "list_systems"]

#: labkit's corrections of dysts' metadata, each with its reason and citation (Lorenz:
#: sigma = 10, rho = 28 and the exact beta = 8/3 of Lorenz 1963, where dysts 0.96 stores
#: 2.667; the largest exponent 0.9056 of Sprott 2003). A system's fields there replace
#: dysts' (``parameters`` value by value, in dysts' order); its ``override`` text becomes
#: :attr:`System.override`.
OVERRIDES_FILE = Path(__file__).parent / "data" / "catalogue_overrides.json"

#: Systems of dysts' catalogue that labkit lists but cannot run on torch, and why (empty:
#: BlinkingVortexMap, which needs a root solve per point, is ported by hand).
UNSUPPORTED: dict[str, str] = {}

#: dysts flows whose hand-written Jacobian (``_jac``) disagrees with their right-hand side,
#: with the measured discrepancy: labkit does not use these (``"auto"`` takes autograd).
#: tests/dynamics/catalogue/test_jacobians.py checks every dysts Jacobian against forward-mode
#: autograd and central differences along a trajectory, at the default and perturbed
#: parameters, and asserts that this is exactly the set that fails. With dysts 0.96 all
#: 60 agree (worst relative difference from autograd 2e-16, from differences 7e-10).
ANALYTIC_JACOBIAN_EXCLUDED: dict[str, str] = {}

#: The values of ``method`` that :meth:`System.jacobian` accepts.
JACOBIAN_METHODS = ("auto", "analytic", "autograd", "difference")

Field = Callable[..., torch.Tensor]


@functools.cache
def _dysts_data() -> Path:
    spec = importlib.util.find_spec("dysts")
    if spec is None or spec.origin is None:  # pragma: no cover - dysts is a dependency
        raise ConfigError("the dysts package is not installed: pip install dysts")
    return Path(spec.origin).parent / "data"


@functools.cache
def _metadata() -> dict[str, dict[str, Any]]:
    """dysts' metadata of flows, delay equations and maps (maps marked ``"map": True``)."""
    flows = json.loads((_dysts_data() / "chaotic_attractors.json").read_text())
    maps = json.loads((_dysts_data() / "discrete_maps.json").read_text())
    # dysts 0.96 lists three maps (EndCap, Zaslavskii, ZeraouliaSprott) without code. The
    # classes are read off the source: importing dysts costs 1-2 s, which the first use
    # of a system should not pay (the compiled kernels do not need dysts' code at all).
    source = (_dysts_data().parent / "maps.py").read_text()
    implemented = set(re.findall(r"^class (\w+)\(", source, flags=re.MULTILINE))
    merged = dict(flows)
    for name, meta in maps.items():
        if name in implemented:  # a map named like a flow (Duffing) becomes DuffingMap
            merged[f"{name}Map" if name in flows else name] = meta | {"map": True,
                                                                      "dysts_name": name}
    for name, fix in _overrides().items():
        merged[name] = _overridden(name, merged.get(name), fix)
    return merged


@functools.cache
def _overrides() -> dict[str, dict[str, Any]]:
    """labkit's corrections of dysts' metadata, by system (:data:`OVERRIDES_FILE`)."""
    return json.loads(OVERRIDES_FILE.read_text())["systems"]


def _overridden(name: str, meta: dict[str, Any] | None, fix: Mapping[str, Any]) -> dict[str, Any]:
    """dysts' metadata ``meta`` of ``name`` with labkit's fields ``fix`` on top."""
    if meta is None:
        raise DataError(f"{OVERRIDES_FILE.name} overrides {name!r}, which dysts does not list")
    if not fix.get("override") or not fix.get("citation"):
        raise DataError(f"{OVERRIDES_FILE.name}: the entry of {name} must say why "
                        "('override') and cite its values ('citation')")
    params = dict(fix.get("parameters", {}))
    unknown = sorted(set(params) - set(meta["parameters"]))
    if unknown:
        raise DataError(f"{OVERRIDES_FILE.name}: {name} has no parameter(s) {unknown}; "
                        f"dysts' parameters: {sorted(meta['parameters'])}")
    out = meta | {k: v for k, v in fix.items() if k != "parameters"}
    out["parameters"] = {k: params.get(k, v) for k, v in meta["parameters"].items()}
    return out


def _resolve(name: str, names: list[str]) -> str:
    if not isinstance(name, str):
        raise ConfigError(f"system name must be a string, got {name!r}")
    by_lower = {n.lower(): n for n in names}
    if name in names:
        return name
    if name.lower() in by_lower:
        return by_lower[name.lower()]
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=5, cutoff=0.5)
    hint = ", ".join(by_lower[c] for c in close) or "none"
    raise ConfigError(f"unknown system {name!r}; closest names: {hint} "
                      f"(labkit.dynamics.list_systems() lists all {len(names)})")


def _max(*args: Any, **kwargs: Any) -> Any:
    if len(args) == 2 and any(isinstance(a, torch.Tensor) for a in args):
        return torch_numpy.maximum(*args)
    return max(*args, **kwargs)


def _min(*args: Any, **kwargs: Any) -> Any:
    if len(args) == 2 and any(isinstance(a, torch.Tensor) for a in args):
        return torch_numpy.minimum(*args)
    return min(*args, **kwargs)


#: What :func:`_shimmed` binds by default: the torch stand-in for ``np``, and the builtins
#: ``max``/``min`` made elementwise for tensors.
TORCH_SHIMS: dict[str, Any] = {"np": torch_numpy, "max": _max, "min": _min}


def _shimmed(func: Any, shims: Mapping[str, Any] | None = None) -> types.FunctionType:
    """``func`` with the names of ``shims`` (default :data:`TORCH_SHIMS`) rebound in its
    globals."""
    while isinstance(func, staticmethod):
        func = func.__func__
    func = getattr(func, "py_func", func)  # a numba dispatcher, when numba is installed
    namespace = dict(func.__globals__)
    namespace.update(TORCH_SHIMS if shims is None else shims)
    return types.FunctionType(func.__code__, namespace, func.__name__, func.__defaults__,
                              func.__closure__)


def _dysts(module: str) -> types.ModuleType:
    """Import ``dysts.<module>`` without its warning that numba (optional) is missing."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Numba not installed")
        return importlib.import_module(f"dysts.{module}")


def _own_members(cls: type, shims: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Functions defined on ``cls`` and its bases below dysts' base classes, shimmed (see
    :func:`_shimmed`)."""
    base = _dysts("base")
    stop = {object, *(getattr(base, n) for n in ("BaseDyn", "DynSys", "DynSysDelay", "DynMap")
                      if hasattr(base, n))}
    members: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if klass in stop:
            continue
        for key, value in vars(klass).items():
            if isinstance(value, staticmethod):
                members[key] = staticmethod(_shimmed(value.__func__, shims))
            elif isinstance(value, types.FunctionType):
                members[key] = _shimmed(value, shims)
    return members


def _adapt(name: str) -> Field:
    """A batched torch ``f(t, y, params)`` running dysts' code for ``name``: the vector
    field of a flow, or the map itself (``t`` unused) for a map."""
    meta = _metadata()[name]
    is_map = bool(meta.get("map"))
    cls = getattr(_dysts("maps" if is_map else "flows"), meta.get("dysts_name", name))
    members = _own_members(cls)
    if "rhs" not in members:  # dysts' rhs calls the static _rhs(*X.T, [t,] *params)
        rhs = members["_rhs"].__func__
        arg_names = list(inspect.signature(rhs).parameters)
        dim = len(meta["initial_conditions"])
        param_names = arg_names[dim:] if is_map else arg_names[arg_names.index("t") + 1:]

        def static_field(t: torch.Tensor, y: torch.Tensor, params: Mapping[str, Any]) -> Any:
            args = [params[p] for p in param_names]
            out = rhs(*y.unbind(-1), *args) if is_map else rhs(*y.unbind(-1), t, *args)
            return out if isinstance(out, tuple | list) else (out,)  # one-dimensional systems

        return static_field
    proxy_type = type(f"{name}OnTorch", (), members)
    vectors = {k for k, v in meta["parameters"].items()
               if isinstance(v, list) and not isinstance(v[0], list)}

    def method_field(t: torch.Tensor, y: torch.Tensor, params: Mapping[str, Any]) -> Any:
        # The state arrives as [state, *batch]; vector parameters line up with its first axis.
        lift = (1,) * (y.ndim - 1)
        proxy: Any = object.__new__(proxy_type)
        proxy.__dict__.update({k: v.reshape(v.shape + lift) if k in vectors else v
                               for k, v in params.items()})
        state = y.movedim(-1, 0)
        return proxy.rhs(state) if is_map else proxy.rhs(state, t)

    return method_field


def _dysts_jacobian(name: str) -> Field | None:
    """A batched torch ``J(t, y, params)`` running dysts' hand-written Jacobian of the flow
    ``name`` (its static ``_jac(*state, t, *params)``, rows of entries), or ``None`` when
    dysts has none (maps, hand-ported flows, and flows without ``_jac``).

    This is dysts' code as it stands, whether or not it is right: :func:`_build` leaves
    out the systems in :data:`ANALYTIC_JACOBIAN_EXCLUDED`.
    """
    from labkit.dynamics.catalogue._ports import PORTED

    meta = _metadata()[name]
    if meta.get("map") or meta.get("delay") or name in PORTED:
        return None
    members = _own_members(getattr(_dysts("flows"), name))
    if "_jac" not in members or not isinstance(members["_jac"], staticmethod):
        return None
    jac = members["_jac"].__func__
    arg_names = list(inspect.signature(jac).parameters)
    param_names = arg_names[arg_names.index("t") + 1:]

    def jacobian(t: torch.Tensor, y: torch.Tensor, params: Mapping[str, Any]) -> torch.Tensor:
        return _as_matrix(jac(*y.unbind(-1), t, *[params[p] for p in param_names]), y)

    return jacobian


class _Lazy:
    """A right-hand side or Jacobian made on its first call: making it imports dysts (1-2
    s), which a system integrated by its compiled kernel never needs."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._value: Any = self

    def resolve(self) -> Any:
        if self._value is self:
            self._value = self._make()
        return self._value

    def __call__(self, *args: Any) -> Any:
        return self.resolve()(*args)


def _resolved(value: Any) -> Any:
    return value.resolve() if isinstance(value, _Lazy) else value


def _as_state(out: Any, y: torch.Tensor) -> torch.Tensor:
    """A vector field's output (a tensor ``[state, *batch]`` or a tuple of components)
    as ``[*batch, state]``."""
    batch = y.shape[:-1]
    if isinstance(out, torch.Tensor) and out.ndim >= 1 and out.shape[0] == y.shape[-1]:
        out = out.unbind(0)
    parts = [torch.as_tensor(o, dtype=y.dtype, device=y.device) for o in out]
    shape = torch.broadcast_shapes(batch, *(p.shape for p in parts))
    return torch.stack([p.expand(shape) for p in parts], dim=-1)


def _as_matrix(out: Any, y: torch.Tensor) -> torch.Tensor:
    """A Jacobian written as dysts writes it (a sequence of rows of entries, or a tensor
    ``[dim, dim, *batch]`` from ``np.array`` of rows) as ``[*batch, dim, dim]``."""
    rows = out.unbind(0) if isinstance(out, torch.Tensor) else out
    return torch.stack([_as_state(row, y) for row in rows], dim=-2)


@dataclasses.dataclass(frozen=True, eq=False)
class System:
    """One system of the catalogue: a flow (an ODE) or a map.

    For a flow, :meth:`rhs` is the vector field; for a map it is the map itself (the next
    state; ``t`` is ignored) and :meth:`iterate` runs it.

    The metadata are dysts', except where labkit overrides them with cited values
    (:attr:`override` says what and why; :data:`OVERRIDES_FILE` holds them): for Lorenz,
    the exact ``beta = 8/3`` of Lorenz (1963) instead of dysts' 2.667, and the
    literature's largest exponent.

    Attributes:
        name: dysts' name (``"Lorenz"``, ``"Henon"``); lookups ignore case.
        kind: ``"flow"`` or ``"map"``.
        dim: dimension of the state.
        parameters: default parameter values (floats, or tuples for vector parameters),
            in dysts' order.
        initial_condition: dysts' default initial state.
        dt: dysts' integration time step (resolves the fastest time scale).
        period: dysts' dominant period (time units per oscillation).
        reference: dysts' stored invariants (``maximum_lyapunov_estimated``,
            ``lyapunov_spectrum_estimated``, ``kaplan_yorke_dimension``,
            ``correlation_dimension``, ...), as dysts publishes them (at dysts'
            parameters), and ``maximum_lyapunov_published``: the literature's largest
            exponent where labkit cites one (Lorenz: 0.9056, Sprott 2003), else None.
        citation: dysts' citation, or labkit's where it overrides dysts' values.
        description: from dysts' metadata.
        nonautonomous: the field depends on time explicitly.
        variables: names of the state's components (``("x", "y", "z")`` for Lorenz;
            ``x0, x1, ...`` where no names are cited).
        override: what labkit changes in dysts' metadata of this system and why; ``""``
            where it uses dysts' metadata as published.
        has_analytic_jacobian: :meth:`jacobian` can use dysts' hand-written Jacobian.
        base_extent: the extent of the attractor at the default parameters, the largest
            ``|mean| + 3 std`` over the bounded coordinates of dysts' stored statistics
            (its ``unbounded_indices``, phase-like coordinates, left out); for a map,
            for which dysts stores none, and a flow with no bounded coordinate, the
            largest component of the default initial condition. :meth:`extent` scales it
            to other parameters.

    Example:
        >>> from labkit.dynamics import get_system
        >>> lorenz = get_system("lorenz")
        >>> lorenz.parameters["beta"] == 8 / 3, lorenz.reference["maximum_lyapunov_published"]
        (True, 0.9056)
    """

    name: str
    kind: str
    dim: int
    parameters: Mapping[str, Any]
    initial_condition: tuple[float, ...]
    dt: float
    period: float | None

    def period_of_flow(self) -> float:
        """:attr:`period`, which every flow has (maps have none).

        Raises:
            DataError: the system has no period (a map).
        """
        if self.period is None:
            raise DataError(f"{self.name} has no period (it is a {self.kind})")
        return float(self.period)
    reference: Mapping[str, Any]
    citation: str
    description: str
    nonautonomous: bool
    variables: tuple[str, ...]
    override: str
    _field: Field = dataclasses.field(repr=False)
    _jacobian: Field | None = dataclasses.field(default=None, repr=False)
    base_extent: float = dataclasses.field(default=math.nan, repr=False)

    @property
    def has_analytic_jacobian(self) -> bool:
        """Whether dysts writes this system's Jacobian by hand and it passed labkit's check
        (see :data:`ANALYTIC_JACOBIAN_EXCLUDED`); then ``jacobian(method="auto")`` uses it."""
        return _resolved(self._jacobian) is not None

    def params(self, overrides: Mapping[str, Any] | None = None, *,
               like: torch.Tensor | None = None) -> dict[str, Any]:
        """Default parameters with ``overrides``; vector values and tensors are put on
        ``like``'s dtype and device. Unknown names are an error listing the valid ones."""
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(self.parameters))
        if unknown:
            raise ConfigError(f"unknown parameter(s) {unknown} for {self.name}; "
                              f"parameters: {dict(self.parameters)}")
        merged = dict(self.parameters) | overrides
        if like is not None:
            for key, value in merged.items():
                if isinstance(value, torch.Tensor | tuple | list):
                    merged[key] = torch.as_tensor(value, dtype=like.dtype, device=like.device)
        return merged

    def _check_state(self, y: Any) -> torch.Tensor:
        if not isinstance(y, torch.Tensor):
            raise ConfigError(f"{self.name}: the state must be a torch tensor [*batch, "
                              f"{self.dim}], got {type(y).__name__}")
        if y.ndim < 1 or y.shape[-1] != self.dim:
            raise ConfigError(f"{self.name}: the state must have shape [*batch, {self.dim}], "
                              f"got {tuple(y.shape)}")
        return y

    def rhs(self, t: FieldTime | float, y: States, /, **params: Any) -> Float[Tensor, "... state"]:
        """The vector field ``dy/dt`` at ``y`` (``[*batch, dim]``), shape ``[*batch, dim]``.

        Parameters default to :attr:`parameters`; any may be a tensor broadcasting
        against ``y[..., 0]``, for a parameter batch (e.g. 512 values of ``rho``; the
        result then has the broadcast batch shape, hence ``...`` in the annotation). ``t``
        and ``y`` are positional, so a parameter may be called ``t`` (BlinkingVortexMap's).
        """
        y = self._check_state(y)
        t = torch.as_tensor(t, dtype=y.dtype, device=y.device)
        return _as_state(self._field(t, y, self.params(params, like=y)), y)

    def vector_field(self, **params: Any) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """``f(t, y)`` with the parameters bound, for :func:`labkit.core.rk4` and friends.

        It carries ``kernel_source`` (the compiled kernels) and ``attractor_scale``,
        :meth:`extent` at these parameters, from which the integrators take their default
        divergence bound (:func:`labkit.core.integrate.default_bound`)."""
        merged = self.params(params)  # fail now for unknown names

        def field(t: FieldTime, y: States) -> States:
            return self.rhs(t, y, **params)

        field.kernel_source = self._kernel_source(merged)  # type: ignore[attr-defined]
        field.attractor_scale = self.extent(**params)  # type: ignore[attr-defined]
        return field

    def extent(self, **params: Any) -> float | torch.Tensor:
        r"""An upper estimate of the attractor's extent (largest ``|y_i|``) at ``params``:
        :attr:`base_extent` times, for every parameter moved from its default, the factor
        it moved by, up or down,

        .. math:: E(p) = E_0 \prod_k \frac{\max(|p_k|, |p_k^0|)}{\min(|p_k|, |p_k^0|)}

        (a parameter moved from or to 0 counts ``max(1, |p_k|, |p_k^0|)``; a vector
        parameter its largest factor). A tensor parameter (a parameter batch) gives a
        tensor of the same shape, one extent per value.

        This is what the integrators' default divergence bound scales with
        (:func:`labkit.core.integrate.default_bound`: 1e4 times it), and it is meant to
        err high: an attractor's size is rarely more than linear in a parameter's factor
        (Lorenz: ``z ~ rho``, ``x ~ sqrt(beta rho)``), and what grows faster is still
        covered by the factor 1e4 (up to ``r^2`` for factors ``r`` up to 1e4). Measured for
        Lorenz at ``rho = 1e6``: the estimate 1.76e6 against ``max |z|`` = 2.0e6 (LSODA);
        at the defaults the largest bounded ``|y_i|`` along 20 periods from dysts' initial
        condition is 0.8-2.4 times :attr:`base_extent` (the 125 flows RK4 integrates at
        ``dt = period / 200``).

        Example:
            >>> from labkit.dynamics import get_system
            >>> lorenz = get_system("Lorenz")
            >>> round(lorenz.extent()), round(lorenz.extent(rho=1e6) / lorenz.extent())
            (49, 35714)
        """
        defaults = self.params()
        merged = self.params(params)  # fail for unknown names
        factor: float | torch.Tensor = 1.0
        for key, value in merged.items():
            if key in params:
                factor = factor * _factor(defaults[key], value)
        return self.base_extent * factor

    def _kernel_source(self, merged: Mapping[str, Any]) -> Any:
        from labkit.dynamics.catalogue._trace import kernel_source_for

        return kernel_source_for(self.name, merged)

    def jacobian(self, t: FieldTime | float, y: States, /, *, method: str = "auto",
                 **params: Any) -> Float[Tensor, "... state state"]:
        r"""The Jacobian :math:`J_{ij} = \partial f_i / \partial y_j` at each state ``y``
        (``[*batch, dim]``), shape ``[*batch, dim, dim]`` (a parameter batch broadcasts, as
        in :meth:`rhs`); parameters as in :meth:`rhs`.

        Args:
            method: ``"analytic"``: dysts' hand-written Jacobian (when
                :attr:`has_analytic_jacobian`; checked against autograd and differences for
                every flow that has one). ``"autograd"``: forward-mode autograd, one
                Jacobian-vector product per column (exact to rounding; checked against
                finite differences for the whole catalogue). ``"difference"``: central
                differences with steps :math:`10^{-6} (1 + |y_j|)`. ``"auto"``: analytic
                where available, else autograd, else differences (for the few systems whose
                code torch cannot differentiate, such as the floor in the Baker map).

        Raises:
            ConfigError: an unknown ``method``, or ``"analytic"`` for a system without a
                usable analytic Jacobian.
            NotImplementedError: ``"autograd"`` for code torch cannot differentiate.

        Example:
            >>> import torch
            >>> from labkit.dynamics import get_system
            >>> lorenz = get_system("Lorenz")
            >>> lorenz.jacobian(0.0, torch.zeros(5, 3), method="analytic").shape
            torch.Size([5, 3, 3])
        """
        y = self._check_state(y)
        if method not in JACOBIAN_METHODS:
            raise ConfigError(f"method must be one of {JACOBIAN_METHODS}, got {method!r}")
        analytic = _resolved(self._jacobian)
        if method == "analytic" and analytic is None:
            why = ANALYTIC_JACOBIAN_EXCLUDED.get(self.name)
            raise ConfigError(
                f"{self.name} has no usable analytic Jacobian ("
                + (f"dysts' is wrong: {why}" if why else "dysts does not write one")
                + "); use method='auto', 'autograd' or 'difference'")
        if analytic is not None and method in ("auto", "analytic"):
            t = torch.as_tensor(t, dtype=y.dtype, device=y.device)
            return analytic(t, y, self.params(params, like=y))
        eye = torch.eye(self.dim, dtype=y.dtype, device=y.device)
        if method != "difference":
            y = y.contiguous()  # forward-mode AD refuses expanded (stride-0) primals
            try:
                cols = [torch.func.jvp(lambda s: self.rhs(t, s, **params), (y,),
                                       (eye[j].expand_as(y),))[1] for j in range(self.dim)]
                return torch.stack(cols, dim=-1)
            except NotImplementedError:
                if method == "autograd":
                    raise
        h = 1e-6 * (1 + y.abs())
        cols = []
        for j in range(self.dim):
            step = eye[j] * h
            cols.append((self.rhs(t, y + step, **params) - self.rhs(t, y - step, **params))
                        / (2 * h[..., j:j + 1]))
        return torch.stack(cols, dim=-1)

    def iterate(self, y0: States, n_steps: int, *, bound: float | None = None,
                fast: str = "auto", **params: Any) -> Trajectory:
        """Iterate a map ``n_steps`` times from ``y0`` (``[*batch, dim]``).

        Returns a :class:`~labkit.core.Trajectory` with ``t = 0..n_steps`` (iterations),
        ``y`` ``[*batch, n_steps + 1, dim]``; orbits that leave ``bound`` or become
        non-finite are flagged with the iteration and NaN afterwards. ``bound``: one
        number for every orbit, or None for the integrators' default
        (:func:`labkit.core.integrate.default_bound` with :meth:`extent`). ``fast``:
        ``"auto"`` iterates with the compiled kernel on the CPU where the map compiles
        (equal to the eager loop to rounding), ``"eager"`` in torch.
        """
        from types import SimpleNamespace

        from labkit.core.integrate import Trajectory, resolve_bound

        if self.kind != "map":
            raise ConfigError(f"{self.name} is a flow: integrate it (labkit.core.rk4 or "
                              "dopri5 with its vector_field()) instead of iterating it")
        if not isinstance(n_steps, int) or n_steps < 1:
            raise ConfigError(f"n_steps must be an int >= 1, got {n_steps!r}")
        y = self._check_state(y0)
        if fast not in ("auto", "eager"):
            raise ConfigError(f"fast must be 'auto' or 'eager', got {fast!r}")
        merged = self.params(params, like=y)
        bounds = resolve_bound(bound, SimpleNamespace(attractor_scale=self.extent(**params)), y)
        if fast == "auto":
            from labkit.core.kernels import kernel_for, run_fixed

            found = kernel_for(self._kernel_source(merged), y)
            if found is not None:
                out, _, diverged, diverged_at = run_fixed(
                    found[0], found[1], y, method="map", t0=0.0, dt=1.0,
                    save_at=list(range(n_steps + 1)), bound=bounds, out_dtype=None)
                steps = torch.arange(n_steps + 1, dtype=y.dtype)
                assert out is not None  # run_fixed returns the samples unless asked not to
                return Trajectory(t=steps, y=out, diverged=diverged, diverged_at=diverged_at)
        t0 = torch.zeros((), dtype=y.dtype, device=y.device)
        out = torch.empty((*y.shape[:-1], n_steps + 1, self.dim), dtype=y.dtype, device=y.device)
        out[..., 0, :] = y
        diverged = torch.zeros(y.shape[:-1], dtype=torch.bool, device=y.device)
        diverged_at = torch.full(y.shape[:-1], math.nan, dtype=y.dtype, device=y.device)
        with torch.no_grad():
            for i in range(1, n_steps + 1):
                y = _as_state(self._field(t0, y, merged), y)
                bad = (~torch.isfinite(y).all(-1) | (y.abs() > bounds[..., None]).any(-1)) & ~diverged
                if bad.any():
                    diverged_at[bad] = float(i)
                    diverged |= bad
                y = torch.where(diverged[..., None], torch.nan, y)
                out[..., i, :] = y
        steps = torch.arange(n_steps + 1, dtype=y.dtype, device=y.device)
        return Trajectory(t=steps, y=out, diverged=diverged, diverged_at=diverged_at)

    def default_state(self, *, dtype: torch.dtype = torch.float64,
                      device: torch.device | str = "cpu") -> Float[Tensor, " state"]:
        """:attr:`initial_condition` as a tensor ``[dim]``."""
        return torch.tensor(self.initial_condition, dtype=dtype, device=device)


def _build(name: str) -> System:
    from labkit.dynamics.catalogue._ports import PORTED

    meta = _metadata()[name]
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["parameters"].items()}
    is_map = bool(meta.get("map"))
    field = PORTED.get(name) or _Lazy(functools.partial(_adapt, name))
    jacobian = (None if name in ANALYTIC_JACOBIAN_EXCLUDED
                else _Lazy(functools.partial(_dysts_jacobian, name)))
    ref_keys = ("maximum_lyapunov_estimated", "lyapunov_spectrum_estimated",
                "kaplan_yorke_dimension", "correlation_dimension", "pesin_entropy",
                "multiscale_entropy", "maximum_lyapunov_published")
    dim = len(meta["initial_conditions"])
    return System(
        name=name, kind="map" if is_map else "flow", dim=dim,
        parameters=params, initial_condition=tuple(float(v) for v in meta["initial_conditions"]),
        dt=1.0 if is_map else float(meta["dt"]), period=meta.get("period"),
        reference={k: meta.get(k) for k in ref_keys},
        citation=meta.get("citation") or "", description=meta.get("description") or "",
        nonautonomous=bool(meta.get("nonautonomous")),
        variables=tuple(meta.get("variables") or (f"x{i}" for i in range(dim))),
        override=meta.get("override") or "", _field=field, _jacobian=jacobian,
        base_extent=_base_extent(meta),
    )


def _base_extent(meta: Mapping[str, Any]) -> float:
    """:attr:`System.base_extent` from dysts' metadata of one system."""
    unbounded = set(meta.get("unbounded_indices") or ())
    mean, std = meta.get("mean"), meta.get("std")
    if mean and std:
        spans = [abs(float(m)) + 3 * float(s)
                 for i, (m, s) in enumerate(zip(mean, std, strict=True)) if i not in unbounded]
        if spans:
            return max(spans)
    return max(abs(float(v)) for v in meta["initial_conditions"])


def _factor(default: Any, value: Any) -> float | torch.Tensor:
    """By how much a parameter moved from its default, up or down (>= 1; see
    :meth:`System.extent`): a float, or a tensor for a tensor of scalar values."""
    if not isinstance(value, torch.Tensor) and not isinstance(default, tuple | list):
        hi, lo = max(abs(float(value)), abs(float(default))), min(abs(float(value)),
                                                                    abs(float(default)))
        return hi / lo if lo > 0 else max(1.0, hi)
    ref = torch.as_tensor(default, dtype=torch.float64)
    new = torch.as_tensor(value).detach().to(dtype=torch.float64)
    ref = ref.to(new.device)
    if ref.ndim and new.ndim > ref.ndim:  # a batched vector parameter: the vector first
        ref = ref.reshape(ref.shape + (1,) * (new.ndim - ref.ndim))
    hi, lo = torch.maximum(new.abs(), ref.abs()), torch.minimum(new.abs(), ref.abs())
    out = torch.where(lo > 0, hi / torch.where(lo > 0, lo, 1.0), hi.clamp_min(1.0))
    return out.amax() if ref.ndim else out


def list_systems(kind: str = "flow") -> list[str]:
    """Names of the catalogue's systems of one kind: ``"flow"`` (ODEs), ``"map"``, or
    ``"delay"`` (delay equations: see :func:`labkit.dynamics.integrate_delay`)."""
    meta = _metadata()
    kinds = {
        "flow": lambda m: not m.get("delay") and not m.get("map"),
        "delay": lambda m: bool(m.get("delay")),
        "map": lambda m: bool(m.get("map")),
    }
    if kind not in kinds:
        raise ConfigError(f"kind must be 'flow', 'map' or 'delay', got {kind!r}")
    return sorted(n for n, m in meta.items() if kinds[kind](m))


@functools.cache
def _get(name: str) -> System:
    return _build(name)


def get_system(name: str) -> System:
    """The flow or map ``name`` (case-insensitive: ``"lorenz"`` is ``"Lorenz"``). Unknown
    names raise an error that lists the closest names.

    The system carries dysts' metadata except where labkit overrides it with cited values
    (:attr:`System.override` says why): Lorenz has Lorenz's exact ``beta = 8/3`` (dysts
    rounds it to 2.667) and the published largest exponent 0.9056 (Sprott 2003) in
    ``reference["maximum_lyapunov_published"]``.
    """
    canonical = _resolve(name, list(_metadata()))
    if canonical in UNSUPPORTED:
        raise ConfigError(f"{canonical} is not available on torch yet: {UNSUPPORTED[canonical]}")
    if canonical in list_systems("delay"):
        raise ConfigError(f"{canonical} is a delay equation: integrate it with "
                          f"labkit.dynamics.integrate_delay({canonical!r}, history, (t0, t1), dt)")
    return _get(canonical)
