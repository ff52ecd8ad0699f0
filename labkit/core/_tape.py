"""Tracing scalar NumPy-style code into a tape of elementwise operations.

A right-hand side written against NumPy (dysts writes all of its flows this way) is run
once with :class:`Var` placeholders for the state, the time and the parameters, and with
:data:`trace_numpy` standing in for ``np``. Every arithmetic operation and every function
call records one node on a :class:`Tape`; Python control flow on *values* cannot be
recorded and raises :class:`TraceError`, so a function either traces completely or not
at all. The tape is then printed as C (:mod:`labkit.core._cgen`) and compiled into fused
integration kernels.

The tape keeps dysts' operations in dysts' order, with no algebraic rewriting, so the
compiled field computes what eager torch computes, to the rounding of the C library's
transcendental functions. The operations mirror torch's semantics where NumPy and torch
differ (``mod`` follows the divisor's sign; integer powers 2 and 3 are products, as in
torch's CPU kernel).

Why hand-written: sympy would rewrite expressions (and costs 0.5 s to import), jax and
numba do not produce C that labkit can compile for torch tensors on any machine with a
C compiler, and torch.compile's C++ backend takes tens of seconds per system.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["Tape", "TraceError", "Var", "trace_numpy"]


class TraceError(TypeError):
    """The traced code did something a tape cannot record (a branch on a traced value)."""


#: Unary functions: name -> (NumPy name(s) that map to it).
UNARY = ("neg", "abs", "sin", "cos", "tan", "exp", "log", "sqrt", "tanh", "sinh", "cosh",
         "arctan", "arcsin", "arccos", "arcsinh", "floor", "ceil", "sign", "log1p", "expm1",
         "log10", "log2", "cbrt", "not")
#: Binary functions.
BINARY = ("add", "sub", "mul", "div", "pow", "mod", "fmod", "arctan2", "maximum", "minimum",
          "lt", "le", "gt", "ge", "eq", "ne", "and", "or")
#: Operations whose value is a condition (0 or 1), consumed by ``select``.
CONDITIONS = frozenset({"lt", "le", "gt", "ge", "eq", "ne", "and", "or", "not"})


@dataclasses.dataclass(frozen=True)
class Node:
    """One operation: ``op`` on the nodes ``args`` (``value`` for constants, ``index`` for
    inputs: the state component, parameter slot, or 0 for time)."""

    op: str
    args: tuple[int, ...] = ()
    value: float = 0.0
    index: int = 0


class Tape:
    """The recorded operations, in the order they ran (a topological order)."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self._constants: dict[tuple[str, float], int] = {}

    def add(self, node: Node) -> int:
        self.nodes.append(node)
        return len(self.nodes) - 1

    def constant(self, value: float) -> int:
        value = float(value)
        key = (repr(value), value)  # -0.0 and 0.0 stay apart
        if key not in self._constants:
            self._constants[key] = self.add(Node("const", value=value))
        return self._constants[key]

    def var(self, index: int) -> Var:
        return Var(self, index)


class Var:
    """A traced scalar: arithmetic on it records nodes instead of computing."""

    __slots__ = ("index", "tape")
    __array_priority__ = 1000  # numpy scalars defer to Var's reflected operators

    def __init__(self, tape: Tape, index: int) -> None:
        self.tape = tape
        self.index = index

    # -- recording -------------------------------------------------------------------
    def _lift(self, other: Any) -> Var:
        if isinstance(other, Var):
            if other.tape is not self.tape:
                raise TraceError("values from two different traces were combined")
            return other
        if isinstance(other, bool | np.bool_):
            return Var(self.tape, self.tape.constant(float(other)))
        if isinstance(other, numbers.Real | np.floating | np.integer):
            return Var(self.tape, self.tape.constant(float(other)))
        raise TraceError(f"cannot trace an operation with {type(other).__name__} {other!r}")

    def _binary(self, op: str, other: Any, reflected: bool = False) -> Any:
        if isinstance(other, np.ndarray):
            func = np.frompyfunc(lambda o: self._binary(op, o, reflected), 1, 1)
            return func(other)
        b = self._lift(other)
        a, b = (b, self) if reflected else (self, b)
        return Var(self.tape, self.tape.add(Node(op, (a.index, b.index))))

    def _unary(self, op: str) -> Var:
        return Var(self.tape, self.tape.add(Node(op, (self.index,))))

    def __add__(self, o: Any) -> Any: return self._binary("add", o)
    def __radd__(self, o: Any) -> Any: return self._binary("add", o, True)
    def __sub__(self, o: Any) -> Any: return self._binary("sub", o)
    def __rsub__(self, o: Any) -> Any: return self._binary("sub", o, True)
    def __mul__(self, o: Any) -> Any: return self._binary("mul", o)
    def __rmul__(self, o: Any) -> Any: return self._binary("mul", o, True)
    def __truediv__(self, o: Any) -> Any: return self._binary("div", o)
    def __rtruediv__(self, o: Any) -> Any: return self._binary("div", o, True)
    def __pow__(self, o: Any) -> Any: return self._binary("pow", o)
    def __rpow__(self, o: Any) -> Any: return self._binary("pow", o, True)
    def __mod__(self, o: Any) -> Any: return self._binary("mod", o)
    def __rmod__(self, o: Any) -> Any: return self._binary("mod", o, True)
    def __lt__(self, o: Any) -> Any: return self._binary("lt", o)
    def __le__(self, o: Any) -> Any: return self._binary("le", o)
    def __gt__(self, o: Any) -> Any: return self._binary("gt", o)
    def __ge__(self, o: Any) -> Any: return self._binary("ge", o)
    def __and__(self, o: Any) -> Any: return self._binary("and", o)
    def __rand__(self, o: Any) -> Any: return self._binary("and", o, True)
    def __or__(self, o: Any) -> Any: return self._binary("or", o)
    def __ror__(self, o: Any) -> Any: return self._binary("or", o, True)
    def __neg__(self) -> Var: return self._unary("neg")
    def __pos__(self) -> Var: return self
    def __abs__(self) -> Var: return self._unary("abs")
    def __invert__(self) -> Var: return self._unary("not")

    def __eq__(self, o: Any) -> Any:  # type: ignore[override]
        return self._binary("eq", o)

    def __ne__(self, o: Any) -> Any:  # type: ignore[override]
        return self._binary("ne", o)

    __hash__ = object.__hash__

    def __floordiv__(self, o: Any) -> Any:
        return (self / o).floor()

    # NumPy's object-dtype ufunc loops call the element's method of the ufunc's name.
    def sin(self) -> Var: return self._unary("sin")
    def cos(self) -> Var: return self._unary("cos")
    def tan(self) -> Var: return self._unary("tan")
    def exp(self) -> Var: return self._unary("exp")
    def log(self) -> Var: return self._unary("log")
    def sqrt(self) -> Var: return self._unary("sqrt")
    def tanh(self) -> Var: return self._unary("tanh")
    def sinh(self) -> Var: return self._unary("sinh")
    def cosh(self) -> Var: return self._unary("cosh")
    def arctan(self) -> Var: return self._unary("arctan")
    def arcsin(self) -> Var: return self._unary("arcsin")
    def arccos(self) -> Var: return self._unary("arccos")
    def floor(self) -> Var: return self._unary("floor")

    def __bool__(self) -> bool:
        raise TraceError("the traced code branches on a traced value (an `if` or `while`, "
                         "`and`/`or`, or the builtin max/min on state or parameters)")

    def __float__(self) -> float:
        raise TraceError("the traced code converts a traced value to a Python float")

    def __index__(self) -> int:
        raise TraceError("the traced code uses a traced value as an integer (an index, "
                         "a range or a repeat count)")

    __int__ = __index__

    def __repr__(self) -> str:
        return f"Var(#{self.index} {self.tape.nodes[self.index].op})"


def _is_traced(x: Any) -> bool:
    return isinstance(x, Var) or (isinstance(x, np.ndarray) and x.dtype == object)


def _map(func: Callable[..., Any], *args: Any) -> Any:
    """Apply ``func`` elementwise over object arrays (and plain values)."""
    if any(isinstance(a, np.ndarray) for a in args):
        return np.frompyfunc(func, len(args), 1)(*args)
    return func(*args)


def _unary(name: str, numpy_func: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def function(x: Any) -> Any:
        if not _is_traced(x):
            return numpy_func(x)
        return _map(lambda v: v._unary(name) if isinstance(v, Var) else numpy_func(v), x)

    function.__name__ = name
    return function


def _binary(name: str, numpy_func: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def function(a: Any, b: Any) -> Any:
        if not (_is_traced(a) or _is_traced(b)):
            return numpy_func(a, b)

        def one(u: Any, v: Any) -> Any:
            if isinstance(u, Var):
                return u._binary(name, v)
            if isinstance(v, Var):
                return v._binary(name, u, reflected=True)
            return numpy_func(u, v)

        return _map(one, a, b)

    function.__name__ = name
    return function


def _select(cond: Any, a: Any, b: Any) -> Any:
    """``where(cond, a, b)`` for one element."""
    if not isinstance(cond, Var):
        return a if bool(cond) else b
    tape = cond.tape
    a_var, b_var = cond._lift(a), cond._lift(b)
    return Var(tape, tape.add(Node("select", (cond.index, a_var.index, b_var.index))))


def _where(cond: Any, a: Any, b: Any) -> Any:
    if not any(_is_traced(v) for v in (cond, a, b)):
        return np.where(cond, a, b)
    return _map(_select, cond, a, b)


def _heaviside(x: Any, h0: Any) -> Any:
    # torch's form: 1 above zero, 0 below, h0 at zero (labkit's torch stand-in does the same)
    def one(v: Any, h: Any) -> Any:
        if not isinstance(v, Var):
            return np.heaviside(v, h)
        return _select(v > 0, 1.0, _select(v < 0, 0.0, h))

    return _map(one, x, h0) if _is_traced(x) or _is_traced(h0) else np.heaviside(x, h0)


def _clip(x: Any, lo: Any, hi: Any) -> Any:
    if not any(_is_traced(v) for v in (x, lo, hi)):
        return np.clip(x, lo, hi)
    return trace_numpy.minimum(trace_numpy.maximum(x, lo), hi)


class _TraceNumpy:
    """``np`` for tracing: NumPy itself, with its elementwise functions recording nodes
    when given :class:`Var` values or object arrays of them."""

    pi = np.pi
    e = np.e
    inf = np.inf
    newaxis = None

    def __init__(self) -> None:
        for name in UNARY:
            numpy_name = {"neg": "negative", "not": "logical_not"}.get(name, name)
            setattr(self, numpy_name, _unary(name, getattr(np, numpy_name)))
        self.absolute = self.abs
        self.arctanh = _unary("arctanh", np.arctanh)
        for name, numpy_name in (("add", "add"), ("sub", "subtract"), ("mul", "multiply"),
                                 ("div", "divide"), ("pow", "power"), ("mod", "mod"),
                                 ("fmod", "fmod"), ("arctan2", "arctan2"),
                                 ("maximum", "maximum"), ("minimum", "minimum"),
                                 ("lt", "less"), ("le", "less_equal"), ("gt", "greater"),
                                 ("ge", "greater_equal"), ("eq", "equal"), ("ne", "not_equal"),
                                 ("and", "logical_and"), ("or", "logical_or")):
            setattr(self, numpy_name, _binary(name, getattr(np, numpy_name)))
        self.true_divide = self.divide
        self.remainder = self.mod
        self.fmax, self.fmin = self.maximum, self.minimum
        self.where = _where
        self.heaviside = _heaviside
        self.clip = _clip

    @staticmethod
    def array(items: Any, dtype: Any = None) -> Any:
        arr = np.array(items, dtype=object)
        return arr if any(isinstance(v, Var) for v in arr.flat) else np.array(items, dtype=dtype)

    asarray = array

    @staticmethod
    def zeros_like(x: Any, dtype: Any = None) -> Any:
        return np.zeros(np.shape(x), dtype=object) if _is_traced(x) else np.zeros_like(x)

    @staticmethod
    def ones_like(x: Any, dtype: Any = None) -> Any:
        return np.ones(np.shape(x), dtype=object) if _is_traced(x) else np.ones_like(x)

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)


#: The ``np`` stand-in used while tracing.
trace_numpy = _TraceNumpy()


def flatten_outputs(out: Any, tape: Tape) -> list[int]:
    """The node indices of a traced function's outputs (a tuple, list or array of values,
    numbers among them), in order."""
    if isinstance(out, np.ndarray):
        items: Sequence[Any] = list(out.reshape(-1)) if out.ndim else [out.item()]
    elif isinstance(out, tuple | list):
        items = []
        for o in out:
            items.extend([o] if isinstance(o, Var) or np.ndim(o) == 0 else np.ravel(o).tolist())
    else:
        items = [out]
    indices = []
    for item in items:
        if isinstance(item, Var):
            indices.append(item.index)
        elif isinstance(item, numbers.Real | np.floating | np.integer | np.bool_):
            indices.append(tape.constant(float(item)))
        else:
            raise TraceError(f"a traced output is {type(item).__name__} {item!r}, not a number")
    return indices


@dataclasses.dataclass(frozen=True)
class Traced:
    """A traced right-hand side: its tape, the node of each output, and the sizes of its
    inputs (state components and parameter slots; time is input ``("t", 0)``)."""

    tape: Tape
    outputs: tuple[int, ...]
    n_state: int
    n_params: int
    name: str

    def reachable(self) -> list[int]:
        """Indices of the nodes the outputs depend on, in tape order."""
        seen: set[int] = set()
        stack = list(self.outputs)
        while stack:
            i = stack.pop()
            if i in seen:
                continue
            seen.add(i)
            stack.extend(self.tape.nodes[i].args)
        return sorted(seen)


def new_inputs(tape: Tape, n_state: int, n_params: int) -> tuple[list[Var], Var, list[Var]]:
    """Placeholders for the state components, the time and the parameter slots."""
    state = [Var(tape, tape.add(Node("y", index=i))) for i in range(n_state)]
    t = Var(tape, tape.add(Node("t")))
    params = [Var(tape, tape.add(Node("p", index=j))) for j in range(n_params)]
    return state, t, params


def is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real | np.floating | np.integer) and math.isfinite(float(x))
