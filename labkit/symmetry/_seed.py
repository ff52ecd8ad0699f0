"""Seeds in labkit.symmetry: ``seed: int | torch.Generator | None`` (docs/api-conventions.md,
"randomness").

A function with one random stream turns ``seed`` into a generator once
(:func:`generator`; a :class:`torch.Generator` is used as is). A function that needs
several streams and records its seed in its result (:func:`~labkit.symmetry.liegan`,
:func:`~labkit.symmetry.liegg`, :func:`~labkit.symmetry.discover_discrete`, ``judge``)
first resolves ``seed`` to one int, :func:`run_seed`, derives every stream from that int
and records it as ``DiscoveryResult.seed``: passing it back as ``seed`` repeats the run.
"""

from __future__ import annotations

from typing import TypeAlias

import torch

from labkit.core.rng import make_generator
from labkit.errors import ConfigError

__all__ = ["DRAWN_SEED_BOUND", "Seed", "check_seed", "generator", "run_seed"]

Seed: TypeAlias = int | torch.Generator | None

#: An int drawn from a generator by :func:`run_seed` lies in ``[0, DRAWN_SEED_BOUND)``,
#: which leaves room for the derived streams ``s + k`` below the ``2**64`` that
#: ``torch.Generator.manual_seed`` accepts.
DRAWN_SEED_BOUND = 2 ** 62


def check_seed(seed: object) -> None:
    """Raise :class:`~labkit.errors.ConfigError` naming ``seed`` unless it is a
    non-negative int (not a bool), a :class:`torch.Generator` or None."""
    if seed is None or isinstance(seed, torch.Generator):
        return
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"seed must be a non-negative int, a torch.Generator or None, got {seed!r}")


def generator(seed: Seed) -> torch.Generator:
    """``seed`` as a CPU :class:`torch.Generator` (:func:`labkit.core.make_generator`: an
    int seeds a new one, a generator is used as is, None draws fresh entropy)."""
    check_seed(seed)
    return make_generator(seed)


def run_seed(seed: Seed) -> int:
    """The int a run is derived from (and records): an int as given; for a
    :class:`torch.Generator`, one int drawn from it in ``[0, DRAWN_SEED_BOUND)`` (the
    generator advances by that draw); for None, a fresh int from the OS."""
    check_seed(seed)
    if isinstance(seed, torch.Generator):
        draw = torch.randint(0, DRAWN_SEED_BOUND, (1,), generator=seed, device=seed.device)
        return int(draw.item())
    if seed is None:
        return make_generator(None).initial_seed()
    return seed
