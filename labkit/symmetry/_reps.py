"""Representations: how one group element acts on structured data.

A representation acts on the **last axis** of a tensor (or on the node axis, for
permutations) with one group element per sample: ``rep.act(g, x)`` with ``g`` of shape
``[B, d, d]`` and ``x`` of shape ``[B, *mid, D]``; the same element acts on every
middle index (every atom of a point cloud, every time step of a series).

Building blocks: :class:`Vector` (the defining representation; for homogeneous
``(d+1) x (d+1)`` elements, only the linear part), :class:`Point` (affine action,
translations included), :class:`Scalars` (left alone), :class:`NodePermutation`
(permutes axis ``-2``), direct sums (``rep1 + rep2``, ``k * rep``: one action on every
2- or 3-vector of a multi-body state) and :class:`ProductRep` for product groups.
"""

from __future__ import annotations

import abc

import torch

from labkit.core.config import check_int
from labkit.errors import ConfigError

__all__ = ["DirectSum", "NodePermutation", "Point", "ProductRep", "Rep", "Scalars", "Vector"]


def _as_batch(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    g = g.to(x.dtype) if g.is_floating_point() else g
    if g.ndim == 2:
        g = g.expand(x.shape[0], *g.shape)
    if g.shape[0] != x.shape[0]:
        raise ConfigError(
            f"one group element per sample: got {g.shape[0]} elements for {x.shape[0]} samples"
        )
    return g


class Rep(abc.ABC):
    """A representation acting on the last axis (size :attr:`dim`, or any size for
    :class:`NodePermutation`, whose ``dim`` is 0)."""

    dim: int

    @abc.abstractmethod
    def act(self, g, x: torch.Tensor) -> torch.Tensor:
        """``g . x`` for ``g`` ``[B, d, d]`` (or one ``[d, d]``) and ``x`` ``[B, *mid, dim]``."""

    def _check(self, x: torch.Tensor) -> None:
        if self.dim and x.shape[-1] != self.dim:
            raise ConfigError(
                f"{self!r} acts on a last axis of size {self.dim}, got shape {tuple(x.shape)}"
            )

    def __add__(self, other: Rep) -> DirectSum:
        return DirectSum(self, other)

    def __rmul__(self, k: int) -> DirectSum:
        check_int("copies", k)
        return DirectSum(*([self] * k))


class Vector(Rep):
    """The defining representation on :math:`R^d`: ``x -> A x`` with ``A = g[:d, :d]``."""

    def __init__(self, d: int) -> None:
        check_int("d", d)
        self.dim = d

    def act(self, g, x):
        self._check(x)
        g = _as_batch(g, x)[..., : self.dim, : self.dim]
        return torch.einsum("bij,b...j->b...i", g, x)

    def __repr__(self) -> str:
        return f"Vector({self.dim})"


class Point(Rep):
    """Points of :math:`R^d` under an affine group in homogeneous coordinates:
    ``x -> A x + t`` with ``g = [[A, t], [0, 1]]`` of size ``(d+1) x (d+1)``.
    A ``d x d`` element acts linearly."""

    def __init__(self, d: int) -> None:
        check_int("d", d)
        self.dim = d

    def act(self, g, x):
        self._check(x)
        g = _as_batch(g, x)
        out = torch.einsum("bij,b...j->b...i", g[..., : self.dim, : self.dim], x)
        if g.shape[-1] == self.dim + 1:
            t = g[:, : self.dim, self.dim]
            out = out + t.reshape(t.shape[0], *([1] * (x.ndim - 2)), self.dim)
        return out

    def __repr__(self) -> str:
        return f"Point({self.dim})"


class Scalars(Rep):
    """``m`` invariant components."""

    def __init__(self, m: int = 1) -> None:
        check_int("m", m)
        self.dim = m

    def act(self, g, x):
        self._check(x)
        return x

    def __repr__(self) -> str:
        return f"Scalars({self.dim})"


class DirectSum(Rep):
    """Consecutive blocks of the last axis, each acted on by its own representation
    with the same group element."""

    def __init__(self, *reps: Rep) -> None:
        flat: list[Rep] = []
        for r in reps:
            if not isinstance(r, Rep) or isinstance(r, NodePermutation | ProductRep):
                raise ConfigError(f"DirectSum takes Vector/Point/Scalars blocks, got {r!r}")
            flat.extend(r.reps if isinstance(r, DirectSum) else [r])
        if not flat:
            raise ConfigError("DirectSum needs at least one representation")
        self.reps = tuple(flat)
        self.dim = sum(r.dim for r in flat)

    def act(self, g, x):
        self._check(x)
        parts = torch.split(x, [r.dim for r in self.reps], dim=-1)
        return torch.cat([r.act(g, p) for r, p in zip(self.reps, parts, strict=True)], dim=-1)

    def matrix(self, g: torch.Tensor) -> torch.Tensor:
        """The block-diagonal matrix of ``g`` (linear blocks only), ``[B, dim, dim]``."""
        g = torch.as_tensor(g)
        if g.ndim == 2:
            g = g[None]
        eye = torch.eye(self.dim, dtype=g.dtype, device=g.device).expand(g.shape[0], -1, -1)
        return self.act(g, eye.transpose(1, 2)).transpose(1, 2)

    def __repr__(self) -> str:
        return " + ".join(map(repr, self.reps))


class NodePermutation(Rep):
    """Permutes axis ``-2`` (the atoms of ``[B, n_nodes, features]``) with a permutation
    matrix ``P`` ``[B, n_nodes, n_nodes]``; features are untouched."""

    dim = 0

    def act(self, g, x):
        if x.ndim < 2:
            raise ConfigError(f"NodePermutation needs [B, nodes, features], got {tuple(x.shape)}")
        g = _as_batch(g, x)
        if g.shape[-1] != x.shape[-2]:
            raise ConfigError(
                f"permutations of {g.shape[-1]} nodes cannot act on {x.shape[-2]} nodes"
            )
        return torch.einsum("bij,b...jf->b...if", g, x)

    def __repr__(self) -> str:
        return "NodePermutation()"


class ProductRep(Rep):
    """For a :class:`~labkit.symmetry.ProductGroup`: factor ``i`` of ``g`` acts through
    ``reps[i]``; the actions must commute (e.g. a rotation of the features and a
    permutation of the nodes)."""

    def __init__(self, *reps: Rep) -> None:
        if len(reps) < 2:
            raise ConfigError(f"ProductRep needs one representation per factor, got {reps!r}")
        self.reps = reps
        self.dim = max(r.dim for r in reps)

    def act(self, g, x):
        if not isinstance(g, tuple) or len(g) != len(self.reps):
            raise ConfigError(f"{self!r} needs a tuple of {len(self.reps)} group elements")
        for r, gi in zip(self.reps, g, strict=True):
            x = r.act(gi, x)
        return x

    def __repr__(self) -> str:
        return "ProductRep(" + ", ".join(map(repr, self.reps)) + ")"
