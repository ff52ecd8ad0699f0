"""Printing a traced right-hand side as one straight-line torch function.

The C kernels (:mod:`labkit.core._cgen`) serve the CPU. On other devices the same tape is
printed as Python: one torch operation per tape node, on whole batches, with constants as
Python numbers and parameters read from one ``[*batch, P]`` tensor. Compared with the
catalogue's NumPy-shaped field this drops the per-call dtype copies and scalar parameter
tensors, and it has no Python control flow, so ``torch.compile`` captures it whole
(inductor: Triton on CUDA, C++ on the CPU) and a CUDA graph can replay it.

Operations are the ones eager torch runs for the same NumPy code (``x ** 2`` stays
``pow``, ``mod`` is ``torch.remainder``), so the printed field equals the eager one to
rounding (tests: 1e-12 across the catalogue).

Why hand-written: it is the torch twin of the C printer over labkit's own tape; no library
prints such a tape as torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from labkit.core._tape import CONDITIONS, Node, Traced

__all__ = ["TorchField", "torch_function"]

_UNARY = {
    "neg": "torch.neg", "abs": "torch.abs", "sin": "torch.sin", "cos": "torch.cos",
    "tan": "torch.tan", "exp": "torch.exp", "log": "torch.log", "sqrt": "torch.sqrt",
    "tanh": "torch.tanh", "sinh": "torch.sinh", "cosh": "torch.cosh", "arctan": "torch.atan",
    "arcsin": "torch.asin", "arccos": "torch.acos", "arcsinh": "torch.asinh",
    "arctanh": "torch.atanh", "floor": "torch.floor", "ceil": "torch.ceil",
    "sign": "torch.sign", "log1p": "torch.log1p", "expm1": "torch.expm1",
    "log10": "torch.log10", "log2": "torch.log2", "cbrt": "_cbrt", "not": "torch.logical_not",
}
_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**", "lt": "<",
          "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}
_CALL2 = {"mod": "torch.remainder", "fmod": "torch.fmod", "arctan2": "torch.atan2",
          "maximum": "torch.maximum", "minimum": "torch.minimum", "and": "torch.logical_and",
          "or": "torch.logical_or"}


def _cbrt(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.abs(x).pow(1.0 / 3.0)


def _literal(value: float) -> str:
    if math.isnan(value):
        return "math.nan"
    if math.isinf(value):
        return "math.inf" if value > 0 else "-math.inf"
    return repr(float(value))


def _source(traced: Traced) -> str:
    nodes = traced.tape.nodes
    live = traced.reachable()
    lines = ["def field(t, y, p):"]
    tensor_consts: dict[int, str] = {}

    def is_const(i: int) -> bool:
        return nodes[i].op == "const"

    def name(i: int, *, tensor: bool = False) -> str:
        node = nodes[i]
        if node.op == "const":
            if not tensor:
                return _literal(node.value)
            if i not in tensor_consts:
                tensor_consts[i] = f"k{i}"
                lines.insert(1, f"    k{i} = torch.full((), {_literal(node.value)}, "
                                "dtype=y.dtype, device=y.device)")
            return tensor_consts[i]
        if node.op == "y":
            return f"y[..., {node.index}]"
        if node.op == "p":
            return f"p[..., {node.index}]"
        if node.op == "t":
            return "t"
        return f"v{i}"

    def expr(node: Node) -> str:
        op, args = node.op, node.args
        if op in _INFIX:
            # at most one side of a recorded node is a constant; a constant base of a
            # power or a constant left operand stays a Python number (torch's scalar ops)
            return f"{name(args[0])} {_INFIX[op]} {name(args[1])}"
        if op in _UNARY:
            return f"{_UNARY[op]}({name(args[0], tensor=True)})"
        if op in _CALL2:
            return f"{_CALL2[op]}({name(args[0], tensor=True)}, {name(args[1], tensor=True)})"
        if op == "select":
            both = is_const(args[1]) and is_const(args[2])
            return (f"torch.where({name(args[0], tensor=True)}, "
                    f"{name(args[1], tensor=both)}, {name(args[2])})")
        raise NotImplementedError(f"no torch for the operation {op!r}")  # pragma: no cover

    for i in live:
        node = nodes[i]
        if node.op in ("const", "y", "t", "p"):
            continue
        lines.append(f"    v{i} = {expr(node)}")
    outs = []
    for i in traced.outputs:
        node = nodes[i]
        if node.op == "const" or node.op in CONDITIONS:
            outs.append(f"torch.zeros_like(y[..., 0]) + {name(i, tensor=True)}")
        else:
            outs.append(name(i))
    lines.append(f"    outs = torch.broadcast_tensors(y[..., 0], {', '.join(outs)})")
    lines.append("    return torch.stack(outs[1:], -1)")
    return "\n".join(lines) + "\n"


def torch_function(traced: Traced) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor],
                                                torch.Tensor]:
    """``field(t, y, p)`` for the traced right-hand side: ``t`` a 0-d tensor, ``y``
    ``[*batch, n_state]``, ``p`` the parameter slots ``[*batch, P]`` or ``[P]``."""
    namespace: dict[str, object] = {"torch": torch, "math": math, "_cbrt": _cbrt}
    code = compile(_source(traced), f"<labkit field {traced.name}>", "exec")
    exec(code, namespace)  # the source is printed above from the tape: no user text
    function = namespace["field"]
    function.__doc__ = f"The right-hand side of {traced.name}, printed from its tape."
    return function  # type: ignore[return-value]


class TorchField:
    """A catalogue vector field ``f(t, y)`` as one straight-line torch function, with its
    parameters bound (on ``y``'s device and dtype)."""

    def __init__(self, function: Callable[..., torch.Tensor], params: torch.Tensor,
                 name: str) -> None:
        self.function = function
        self.params = params
        self.name = name

    def __call__(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.function(t, y, self.params)

    def __repr__(self) -> str:
        return f"TorchField({self.name})"
