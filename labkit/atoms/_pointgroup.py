"""Discrete symmetry discovery on a crystal: search an integer grid of matrices for the
operations that map the structure onto itself.

A point-group operation of a crystal, written in its lattice basis, is an integer
matrix :math:`W` (fractional coordinates :math:`f \\mapsto W f + t`) that preserves the
metric :math:`G = A A^T` (rows of :math:`A` are the lattice vectors):
:math:`W^T G W = G`. The search enumerates every :math:`W` with entries in
``{-bound, ..., bound}`` and determinant :math:`\\pm 1`, keeps the isometries, and for
each finds a translation :math:`t` that maps every atom onto an atom of the same
species (modulo lattice vectors, within ``symprec`` Angstrom). No symmetry database is
consulted; ``tests/atoms/test_pointgroup.py`` checks the result against spglib.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from labkit.core.config import check_int, check_positive
from labkit.errors import ConfigError

__all__ = ["CrystalSymmetry", "crystal_point_group"]


@dataclasses.dataclass(frozen=True)
class CrystalSymmetry:
    """Symmetry operations found by :func:`crystal_point_group`.

    Attributes:
        rotations: ``[K, 3, 3]`` integer matrices acting on fractional coordinates.
        translations: ``[K, 3]`` fractional translations, one per rotation.
        isometries: how many lattice isometries the search tried on the atoms
            (the lattice's own point group order).
        candidates: how many integer matrices were enumerated.
    """

    rotations: np.ndarray
    translations: np.ndarray
    isometries: int
    candidates: int

    @property
    def order(self) -> int:
        """The order of the crystal's point group."""
        return len(self.rotations)

    def as_dict(self) -> dict[str, int]:
        """Plain numbers: ``order``, ``isometries`` and ``candidates``."""
        return {"order": self.order, "isometries": self.isometries, "candidates": self.candidates}

    def summary(self) -> str:
        """One line for people: the point group's order and the size of the search."""
        return (f"point group of order {self.order} (of {self.isometries} lattice isometries, "
                f"{self.candidates} integer matrices searched)")


def _integer_candidates(bound: int) -> np.ndarray:
    values = np.arange(-bound, bound + 1)
    grid = np.array(list(itertools.product(values, repeat=9)), dtype=np.int8).reshape(-1, 3, 3)
    det = np.rint(np.linalg.det(grid.astype(np.float64)))
    return grid[np.abs(det) == 1]


_CACHE: dict[int, np.ndarray] = {}


def _closed_subgroup(rots: list[np.ndarray], trans: list[np.ndarray]):
    """Drop operations until the rotations are closed under products.

    Near the tolerance an operation can pass the atom test while its products with
    others do not; a set of operations that is not a group is a tolerance artefact, so
    the operation involved in the most missing products is removed first.
    """
    rots, trans = list(rots), list(trans)
    while rots:
        keys = {r.tobytes() for r in rots}
        missing = np.zeros(len(rots), dtype=int)
        for i, j in itertools.product(range(len(rots)), repeat=2):
            if (rots[i] @ rots[j]).tobytes() not in keys:
                missing[i] += 1
                missing[j] += 1
        if not missing.any():
            break
        worst = int(np.argmax(missing))
        del rots[worst], trans[worst]
    return rots, trans


def crystal_point_group(
    lattice, frac, species, *, symprec: float = 1e-3, bound: int = 1
) -> CrystalSymmetry:
    """Operations :math:`(W, t)` that leave a crystal invariant.

    Args:
        lattice: ``[3, 3]`` lattice vectors as rows, Angstrom.
        frac: ``[N, 3]`` fractional coordinates.
        species: ``[N]`` atomic numbers or symbols.
        symprec: distance tolerance, Angstrom (spglib's ``symprec``).
        bound: largest absolute entry of :math:`W` searched (1 suffices for reduced cells;
            2 covers most others at 25x the cost).

    Returns:
        A :class:`CrystalSymmetry`.
    """
    a = np.asarray(lattice, dtype=np.float64)
    f = np.asarray(frac, dtype=np.float64)
    sp = np.asarray(species)
    if a.shape != (3, 3) or not np.isfinite(a).all() or abs(np.linalg.det(a)) < 1e-8:
        raise ConfigError(f"lattice must be 3 finite, independent row vectors [3, 3], got {a!r}")
    if f.ndim != 2 or f.shape[1] != 3 or not np.isfinite(f).all():
        raise ConfigError(f"frac must be finite [N, 3], got shape {f.shape}")
    if sp.shape != (f.shape[0],):
        raise ConfigError(f"species must have one entry per atom ({f.shape[0]}), got {sp.shape}")
    check_positive("symprec", symprec)
    check_int("bound", bound)
    if bound not in _CACHE:
        _CACHE[bound] = _integer_candidates(bound)
    cands = _CACHE[bound].astype(np.float64)
    g = a @ a.T
    # Isometries of the lattice: W^T G W = G. Moving a lattice vector of length L by
    # symprec changes G's entries by about 2 L symprec, which sets the tolerance.
    wgw = np.einsum("kji,jl,klm->kim", cands, g, cands)
    tol = 2.0 * symprec * np.sqrt(np.diag(g).max())
    iso = cands[np.abs(wgw - g).reshape(len(cands), -1).max(1) <= tol]

    f = f % 1.0
    # the rarest species anchors the translation search
    kinds, counts = np.unique(sp, return_counts=True)
    anchor_kind = kinds[np.argmin(counts)]
    anchor = np.flatnonzero(sp == anchor_kind)
    same = sp[:, None] == sp[None, :]
    rots, trans = [], []
    for w in iso:
        wf = f @ w.T
        for j in anchor:
            t = f[j] - wf[anchor[0]]
            d = wf[:, None, :] + t - f[None, :, :]
            d -= np.rint(d)
            dist = np.linalg.norm(d @ a, axis=-1)  # [N, N] Cartesian, minimum image
            hit = (dist <= symprec) & same
            if hit.any(1).all():
                rots.append(np.rint(w).astype(np.int64))
                trans.append(t % 1.0)
                break
    rots, trans = _closed_subgroup(rots, trans)
    return CrystalSymmetry(
        rotations=np.array(rots, dtype=np.int64).reshape(-1, 3, 3),
        translations=np.array(trans).reshape(-1, 3),
        isometries=len(iso),
        candidates=len(cands),
    )
