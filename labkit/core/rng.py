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

__all__ = ["make_generator", "numpy_rng", "spawn_seeds"]


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
