"""Named tensor shapes for labkit's signatures, and the test-time check of them.

One batch convention (STYLE.md, habit 4): vector fields and layers act on the last axis
and broadcast over leading batch axes; trajectories are ``[*batch, time, state]``. The
aliases below name those axes with `jaxtyping <https://docs.kidger.site/jaxtyping/>`_, so
a signature says what it takes::

    from labkit.core.shapes import States, TimeSeries

    def last_state(y: TimeSeries) -> States:
        return y[..., -1, :]

To a static type checker an alias is plain :class:`torch.Tensor` (jaxtyping's types are
``typing.Annotated`` there). For users nothing is checked and nothing is paid: the
annotations are strings that nothing evaluates. The test run checks them: pyproject.toml's
pytest options install jaxtyping's import hook on the modules that use these aliases (a
new one goes into ``--jaxtyping-packages``; ``tests/core/test_shapes.py`` checks that),
with :func:`check_shapes` as the checker, so a wrongly shaped tensor passed to or
returned by an annotated function raises :class:`jaxtyping.TypeCheckError` in the tests.
A test of a function's own error for a wrongly shaped argument (what users get) uses the
``unchecked_shapes`` fixture. Axis names are bound per call: every ``state`` in one call
is the same size, and ``*batch`` the same leading axes (``*#batch`` may also broadcast
against them); inline annotations (``Float[Tensor, "*ka n n"]``) name axes of their own.

The dtype families follow jaxtyping: ``Float`` is any floating dtype (float16 to
float64), ``Int`` any integer dtype, ``Bool`` ``torch.bool``.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from jaxtyping import AbstractArray, Bool, Float, Int, Shaped
from torch import Tensor

__all__ = [
    "AtomMask",
    "BatchMask",
    "Batched",
    "CrystalTensors",
    "DiffusionSteps",
    "FieldTime",
    "FracCoords",
    "Generators",
    "GroupElements",
    "Jacobians",
    "Lattices",
    "MemberStates",
    "PerSample",
    "PerTime",
    "PerTrajectory",
    "Scalar",
    "SeriesLike",
    "Species",
    "Spectra",
    "StepCounts",
    "States",
    "Times",
    "TimeSeries",
    "VectorField",
    "check_shapes",
]

#: States ``[*batch, state]``: initial conditions, the input and output of a vector field.
States = Float[Tensor, "*batch state"]
#: States sampled in time ``[*batch, time, state]``: a batch of trajectories.
TimeSeries = Float[Tensor, "*batch time state"]
#: Sample times ``[time]`` of a :class:`~labkit.core.Trajectory`.
Times = Float[Tensor, "time"]
#: The time argument of a vector field: 0-d (one time for the whole batch) or one time per
#: trajectory, broadcastable against ``*batch``.
FieldTime = Float[Tensor, "*#batch"]
#: One value per trajectory ``[*batch]``, e.g. the time at which it diverged.
PerTrajectory = Float[Tensor, "*batch"]
#: One flag per trajectory ``[*batch]``, e.g. whether it diverged.
BatchMask = Bool[Tensor, "*batch"]
#: One count per trajectory ``[*batch]``, e.g. accepted steps of an adaptive solver.
StepCounts = Int[Tensor, "*batch"]
#: A batch of samples ``[batch, ...]`` of any dtype and trailing shape (model inputs).
Batched = Shaped[Tensor, "batch ..."]
#: A stack of ``k`` Lie-algebra generators, ``[k, n, n]`` matrices.
Generators = Float[Tensor, "k n n"]
#: One group element per sample, ``[batch, d, d]`` matrices.
GroupElements = Float[Tensor, "batch d d"]
#: One value per sample ``[batch]``, e.g. a per-sample error.
PerSample = Float[Tensor, "batch"]
#: A 0-d tensor, e.g. a loss.
Scalar = Float[Tensor, ""]

# -- dynamics --------------------------------------------------------------------------
#: Jacobians ``[*batch, state, state]`` of a vector field or a map at states ``[*batch, state]``.
Jacobians = Float[Tensor, "*batch state state"]
#: Lyapunov spectra ``[*batch, exponents]``, one per trajectory.
Spectra = Float[Tensor, "*batch exponents"]
#: One value per sample time ``[time]``, e.g. the mean log-separation of neighbours.
PerTime = Float[Tensor, "time"]
#: The states of ``members`` models run at once, ``[members, batch, state]`` (the GTF
#: trainer's stacked models).
MemberStates = Float[Tensor, "members batch state"]
#: A series ``[*batch, time, state]`` as a NumPy array or a tensor (what the reconstruction
#: metrics take).
SeriesLike = Float[np.ndarray | Tensor, "*batch time state"]

# -- crystals (labkit.atoms: dense batches padded to ``atoms`` per structure) ----------------
#: Atomic numbers ``[batch, atoms]``, 0 on padding.
Species = Int[Tensor, "batch atoms"]
#: Real atoms ``[batch, atoms]`` (False on padding).
AtomMask = Bool[Tensor, "batch atoms"]
#: Fractional coordinates ``[batch, atoms, 3]``.
FracCoords = Float[Tensor, "batch atoms 3"]
#: Lattices ``[batch, 3, 3]``, the lattice vectors as rows (Angstrom).
Lattices = Float[Tensor, "batch 3 3"]
#: One integer diffusion step per structure ``[batch]``.
DiffusionSteps = Int[Tensor, "batch"]
#: A padded batch of crystals as tensors: ``(species, frac, lattice, mask)``.
CrystalTensors = tuple[Species, FracCoords, Lattices, AtomMask]

#: A vector field ``f(t, y) -> dy/dt``: ``y`` and ``dy/dt`` are ``[*batch, state]``, ``t`` is
#: 0-d (fixed-step integrators) or one time per trajectory (:func:`~labkit.core.dopri5`).
VectorField = Callable[[FieldTime, States], States]

_F = TypeVar("_F", bound=Callable[..., Any])


def _has_shape(annotation: object) -> bool:
    """Whether ``annotation`` is, or contains (in a union, tuple, ...), a jaxtyping array.

    Callables (a :data:`VectorField`) do not count: only their being callable could be
    checked, and that is the function's own validation."""
    if isinstance(annotation, type) and issubclass(annotation, AbstractArray):
        return True
    if typing.get_origin(annotation) is Callable:
        return False
    return any(_has_shape(arg) for arg in typing.get_args(annotation))


def check_shapes(fn: _F) -> _F:
    """beartype ``fn``'s shape annotations, and only those.

    The checker that the test run gives jaxtyping's import hook (``--jaxtyping-packages=
    ...,labkit.core.check_shapes`` in pyproject.toml). Parameters and return values
    annotated with a jaxtyping array type (an alias of this module, alone or inside a
    union or tuple) are checked; the other annotations are left to the function's own
    validation, which raises labkit's errors quoting the bad value (STYLE.md, habit 7)
    and is tested as such. Needs ``beartype`` (a test dependency).

    jaxtyping calls this on a stand-in with ``fn``'s signature and annotations already
    resolved, so the annotations are edited in place. This module itself is never
    instrumented (the hook would decorate this function with itself while defining it).
    """
    from beartype import BeartypeConf, beartype

    fn.__annotations__ = {k: v for k, v in fn.__annotations__.items() if _has_shape(v)}
    # is_pep484_tower: an int passes for a float inside a union with a shape, as in typing.
    return beartype(conf=BeartypeConf(is_pep484_tower=True))(fn)
