"""A NumPy-shaped namespace backed by torch, for running dysts' right-hand sides batched.

dysts writes its vector fields against NumPy (``np.sin``, ``np.heaviside``, ...). Given
as ``np`` to such a function, :data:`torch_numpy` turns each call into the torch
operation, so the same code runs on batched (and CUDA) tensors and supports autograd.
Only what the catalogue needs is translated; anything else falls through to the torch
function of the same name.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["torch_numpy"]


def _like(ref: Any, *values: Any) -> list[torch.Tensor]:
    """``values`` as tensors of ``ref``'s dtype and device (``ref`` may be a scalar)."""
    tensors = [v for v in (ref, *values) if isinstance(v, torch.Tensor)]
    proto = tensors[0] if tensors else torch.tensor(0.0, dtype=torch.float64)
    return [torch.as_tensor(v, dtype=proto.dtype, device=proto.device) for v in (ref, *values)]


def _stack(items: Any) -> Any:
    """``items`` (a tensor, a number, or nested lists of them) as one tensor: nested
    lists become leading component axes, and the entries' own (batch) axes follow."""
    return _nest(items)[0]


def _nest(items: Any) -> tuple[torch.Tensor, int]:
    """:func:`_stack`, and how many leading axes of the result are component axes.

    The entries of a nested list broadcast over their batch axes only, so a constant
    row ``[0, 1]`` next to a batched row ``[x, y]`` (``x``, ``y`` of shape ``[B]``)
    gives ``[2, 2, B]`` whatever ``B`` is (plain broadcasting of ``[2]`` against
    ``[2, B]`` would pair the constant row with the batch axis when ``B == 2``).
    """
    if isinstance(items, torch.Tensor):
        return items, 0
    if not isinstance(items, list | tuple):
        return torch.as_tensor(items, dtype=torch.float64), 0
    if not items:
        return torch.tensor([], dtype=torch.float64), 1
    parts = [_nest(i) for i in items]
    tensors = _like(*(p for p, _ in parts))
    depths = {d for _, d in parts}
    components = {p.shape[:d] for p, d in zip(tensors, (d for _, d in parts), strict=True)}
    if len(depths) == 1 and len(components) == 1:
        depth, component = depths.pop(), components.pop()
        batch = torch.broadcast_shapes(*(p.shape[depth:] for p in tensors))
        lifted = [p.reshape((*component, *(1,) * (len(batch) + depth - p.ndim), *p.shape[depth:]))
                  for p in tensors]
        return torch.stack([p.expand((*component, *batch)) for p in lifted]), depth + 1
    # Ragged nesting (NumPy would refuse it): broadcast the entries as they are.
    shape = torch.broadcast_shapes(*(p.shape for p in tensors))
    return torch.stack([p.expand(shape) for p in tensors]), 1


class _TorchNumpy:
    pi = torch.pi
    e = torch.e
    inf = float("inf")
    newaxis = None

    @staticmethod
    def array(items: Any, dtype: Any = None) -> torch.Tensor:
        return _stack(items)

    asarray = array

    @staticmethod
    def heaviside(x: Any, h0: Any) -> torch.Tensor:
        # torch.heaviside has no forward-mode derivative; this form has (zero, a.e.).
        x, h = _like(x, h0)
        one, zero = torch.ones_like(x), torch.zeros_like(x)
        return torch.where(x > 0, one, torch.where(x < 0, zero, h.expand_as(x)))

    @staticmethod
    def maximum(a: Any, b: Any) -> torch.Tensor:
        return torch.maximum(*_like(a, b))

    @staticmethod
    def minimum(a: Any, b: Any) -> torch.Tensor:
        return torch.minimum(*_like(a, b))

    @staticmethod
    def mod(a: Any, b: Any) -> torch.Tensor:
        return torch.remainder(*_like(a, b))

    @staticmethod
    def power(a: Any, b: Any) -> torch.Tensor:
        return torch.pow(*_like(a, b))

    @staticmethod
    def arctan2(a: Any, b: Any) -> torch.Tensor:
        return torch.atan2(*_like(a, b))

    @staticmethod
    def dot(a: Any, b: Any) -> torch.Tensor:
        """Contract the first axis of ``a`` with the first axis of ``b`` (NumPy's ``dot``
        for the vectors the catalogue uses, broadcast over trailing batch axes)."""
        a, b = _like(a, b)
        if a.ndim == 1 and b.ndim >= 1 and b.shape[0] == a.shape[0]:
            return torch.tensordot(a, b, dims=([0], [0]))  # pyright: ignore[reportArgumentType]  # torch's stub types dims as int
        if b.ndim == 1 and a.shape[0] == b.shape[0]:
            return torch.tensordot(b, a, dims=([0], [0]))  # pyright: ignore[reportArgumentType]  # torch's stub types dims as int
        return torch.tensordot(a, b, dims=([-1], [0]))  # pyright: ignore[reportArgumentType]  # torch's stub types dims as int

    @staticmethod
    def matmul(a: Any, b: Any) -> torch.Tensor:
        """``a @ b`` where ``b`` holds the state on its first axis: ``[d, *batch]``."""
        a, b = _like(a, b)
        return torch.tensordot(a, b, dims=([-1], [0]))  # pyright: ignore[reportArgumentType]  # torch's stub types dims as int

    @staticmethod
    def sum(x: Any, axis: int | None = None) -> torch.Tensor:
        x = _stack(x)
        return x.sum() if axis is None else x.sum(dim=axis)

    @staticmethod
    def zeros_like(x: Any) -> torch.Tensor:
        return torch.zeros_like(_stack(x))

    @staticmethod
    def ones_like(x: Any) -> torch.Tensor:
        return torch.ones_like(_stack(x))

    @staticmethod
    def roll(x: Any, shift: int, axis: int = 0) -> torch.Tensor:
        return torch.roll(x, shifts=shift, dims=axis)

    @staticmethod
    def clip(x: Any, lo: Any, hi: Any) -> torch.Tensor:
        return torch.clamp(_stack(x), lo, hi)

    def __getattr__(self, name: str) -> Any:
        try:
            func = getattr(torch, name)
        except AttributeError:
            raise AttributeError(f"the torch stand-in for numpy has no {name!r}") from None
        if not callable(func):
            return func

        def elementwise(x: Any, *args: Any, **kwargs: Any) -> Any:
            # np.sqrt(2) works on plain numbers; torch.sqrt needs a tensor.
            if not isinstance(x, torch.Tensor):
                x = torch.as_tensor(x, dtype=torch.float64)
            return func(x, *args, **kwargs)

        return elementwise


torch_numpy = _TorchNumpy()
