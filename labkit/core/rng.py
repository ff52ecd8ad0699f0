"""Explicit randomness. labkit never seeds or reads a global random state.

Functions that draw random numbers take ``seed``: an ``int``, a
:class:`torch.Generator` (used as is) or ``None`` (fresh entropy, recorded so a run
can be repeated).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from labkit.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["linear_layer", "make_generator", "numpy_rng", "spawn_seeds", "uniform"]


def _check_seed(seed: object) -> None:
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise ConfigError(f"seed must be a non-negative int or None, got {seed!r}")


def make_generator(
    seed: int | torch.Generator | None = None, device: str | torch.device = "cpu"
) -> torch.Generator:
    """A :class:`torch.Generator` on ``device`` seeded from ``seed``.

    A generator passed in is returned unchanged. ``None`` draws a seed from the OS.
    """
    import torch

    if isinstance(seed, torch.Generator):
        return seed
    _check_seed(seed)
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> 1)
    gen = torch.Generator(device=torch.device(device))
    gen.manual_seed(seed)
    return gen


def numpy_rng(seed: int | None = None) -> np.random.Generator:
    """A NumPy :class:`~numpy.random.Generator` (PCG64) from ``seed``."""
    _check_seed(seed)
    return np.random.default_rng(seed)


def spawn_seeds(seed: int, n: int) -> list[int]:
    """``n`` statistically independent child seeds of ``seed`` (NumPy ``SeedSequence``)."""
    _check_seed(seed)
    if not isinstance(n, int) or n < 0:
        raise ConfigError(f"n must be a non-negative int, got {n!r}")
    children = np.random.SeedSequence(seed).spawn(n)
    return [int(c.generate_state(1, np.uint64)[0] >> 1) for c in children]


def uniform(shape: tuple[int, ...], bound: float, generator: torch.Generator, *,
            dtype: torch.dtype | None = None) -> torch.Tensor:
    """Initial weights uniform on ``[-bound, bound)``, drawn from ``generator`` in float64 and
    then cast to ``dtype`` (default float64), so that a seed gives the same weights in
    every dtype. The one way labkit's models draw their initial weights."""
    import torch

    draw = torch.rand(shape, generator=generator, dtype=torch.float64)
    return ((draw * 2 - 1) * bound).to(torch.float64 if dtype is None else dtype)


def linear_layer(fan_in: int, fan_out: int, generator: torch.Generator, *,
                 dtype: torch.dtype | None = None) -> torch.nn.Linear:
    """An ``nn.Linear(fan_in, fan_out)`` with PyTorch's default bounds (weight and bias
    uniform on :math:`\\pm 1/\\sqrt{\\text{fan-in}}`), drawn from ``generator`` with
    :func:`uniform` (weight first, then bias) instead of the global random state;
    ``dtype`` defaults to float32."""
    import torch

    dtype = torch.float32 if dtype is None else dtype
    layer = torch.nn.Linear(fan_in, fan_out, dtype=dtype, device="meta").to_empty(device="cpu")
    bound = fan_in ** -0.5
    with torch.no_grad():
        layer.weight.copy_(uniform((fan_out, fan_in), bound, generator, dtype=dtype))
        layer.bias.copy_(uniform((fan_out,), bound, generator, dtype=dtype))
    return layer
