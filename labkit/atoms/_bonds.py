"""Which atoms of a crystal are bonded: VESTA's element-pair cut-offs, searched periodically.

A pair of atoms is bonded when it is closer than the cut-off VESTA uses for its two
elements (Momma & Izumi, "VESTA 3 for three-dimensional visualization of crystal,
volumetric and morphology data", J. Appl. Cryst. 44, 1272-1276 (2011); the table of
VESTA's defaults that pymatgen ships as ``CutOffDictNN.from_preset("vesta_2019")``, read
here from pymatgen's own file). The table holds cation-anion and covalent pairs (Co-O
2.40 Å, Ti-O 2.35 Å, Sr-O 2.98 Å, C-C 1.89 Å, Si-O 1.99 Å ...) and almost no metal-metal
pair (only Hg-Hg, In-Co and In-Mn), so metals are not joined to each other: the B site of
a perovskite gets its BX6 octahedron, and its A site its 12 anions only when they are
close enough for VESTA (Sr-O 2.76 Å in SrTiO3 is; Sc-O 2.71 Å in ScCoO2F, beyond Sc-O's
2.42 Å, is not, so Sc sits in the cavity of the CoO4F2 octahedra). A pair of elements
the table does not list is never bonded.

Why not pymatgen's ``CrystalNN``: it takes 68 ms per 5-atom perov-5 crystal (2 shared
cores, pymatgen 2026.10.24), which is seconds for a denoising trajectory the live viewer
redraws, and its neighbour lists are not symmetric (it gives the A site of ScCoO2F 12
anions while each anion lists only its 2 Co). :func:`crystal_bonds` finds the same bonds
as pymatgen's ``CutOffDictNN`` on the same table (``tests/atoms/test_bonds.py``) in well
under a millisecond, with a bound on the periodic images searched (the near-singular
cells of early denoising frames would otherwise need thousands): docs/crystals.md,
"Bonds in the crystal viewer".
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re
from pathlib import Path
from typing import Any

import numpy as np

from labkit.core.config import check_range
from labkit.errors import DataError

__all__ = ["CrystalBonds", "bond_cutoffs", "crystal_bonds"]

#: Largest atomic number of the cut-off table's index (118 elements; index 0 unused).
MAX_Z = 118
#: Periodic images searched at most on each side of the cell along each lattice vector.
#: A real cell is at least as wide as its shortest bond, so one image suffices there; three
#: still cover cells a third as wide as the longest cut-off (about 1 Å), and keep the
#: search at most 7^3 cells for the near-singular cells of a denoising run's first frames.
MAX_IMAGE_RANGE = 3
#: Two positions closer than this are the same atom (its own image at zero shift), Å.
SAME_ATOM = 1e-6
_LINE = re.compile(r"^\[\s*([A-Za-z]+)\s*,\s*([A-Za-z]+)\s*\]\s*:\s*([0-9.eE+-]+)\s*$")


@functools.cache
def _table() -> np.ndarray:
    import pymatgen.core
    from pymatgen.core import Element

    # The same file CutOffDictNN.from_preset("vesta_2019") loads (pymatgen's copy of
    # VESTA's defaults); parsed here, since its keys are YAML flow sequences.
    path = Path(pymatgen.core.__file__).parent / "vesta_cutoffs.yaml"
    table = np.zeros((MAX_Z + 1, MAX_Z + 1))
    for line in path.read_text().splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        a, b, cut = match.groups()
        if not (Element.is_valid_symbol(a) and Element.is_valid_symbol(b)):
            continue  # "D" (deuterium) and "NH" (ammonium) entries: no element of their own
        za, zb = Element(a).Z, Element(b).Z
        table[za, zb] = table[zb, za] = max(float(cut), table[za, zb])
    if not table.any():
        raise DataError(f"no bond cut-offs read from {path}")
    table.setflags(write=False)
    return table


def bond_cutoffs() -> np.ndarray:
    """VESTA's bond cut-off for every pair of elements, indexed by atomic number.

    Returns:
        ``[119, 119]`` read-only float64 array in Å, symmetric; ``0`` where the pair is
        never bonded (no entry in the table). Index 0 is unused (no element 0).
    """
    return _table()


@dataclasses.dataclass(frozen=True)
class CrystalBonds:
    """The bonds of one crystal, each listed once.

    Bond ``k`` joins atom ``i[k]`` at ``frac[i[k]]`` to atom ``j[k]`` at ``frac[j[k]] +
    image[k]`` (the fractional coordinates as given, not wrapped), ``length[k]`` Å apart.
    ``i <= j``; a bond of an atom to its own image has ``i == j`` and the image with its
    first non-zero component positive.

    Attributes:
        i, j: ``[K]`` int64 atom indices.
        image: ``[K, 3]`` int64 lattice translation of atom ``j``.
        length: ``[K]`` float64 bond lengths, Å.
        n_atoms: atoms in the crystal.
    """

    i: np.ndarray
    j: np.ndarray
    image: np.ndarray
    length: np.ndarray
    n_atoms: int

    def __len__(self) -> int:
        return int(self.i.shape[0])

    def coordination(self) -> np.ndarray:
        """``[N]`` int: the number of bonds of each atom (a bond to its own image counts
        twice, one per end)."""
        return (np.bincount(self.i, minlength=self.n_atoms)
                + np.bincount(self.j, minlength=self.n_atoms))

    def neighbours(self, atom: int) -> list[tuple[int, tuple[int, ...], float]]:
        """``(neighbour, image, length)`` of every bond of ``atom``, both directions, the
        image relative to ``atom``'s cell; sorted by length."""
        out = [(int(b), tuple(int(v) for v in n), float(d))
               for a, b, n, d in zip(self.i, self.j, self.image, self.length, strict=True)
               if a == atom]
        out += [(int(a), tuple(-int(v) for v in n), float(d))
                for a, b, n, d in zip(self.i, self.j, self.image, self.length, strict=True)
                if b == atom]
        return sorted(out, key=lambda t: (t[2], t[0], t[1]))


def structure_arrays(species: Any, frac: Any, lattice: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``species [N]``, ``frac [N, 3]`` (float64) and ``lattice [3, 3]`` (float64) as arrays.

    Raises:
        DataError: other shapes, named.
    """
    z = np.asarray(species)
    x = np.asarray(frac, dtype=np.float64)
    lat = np.asarray(lattice, dtype=np.float64)
    if z.ndim != 1 or x.shape != (z.shape[0], 3) or lat.shape != (3, 3):
        raise DataError(f"expected species [N], frac [N, 3], lattice [3, 3]; got "
                        f"{z.shape}, {x.shape}, {lat.shape}")
    return z, x, lat


def crystal_bonds(species: np.ndarray, frac: np.ndarray, lattice: np.ndarray, *,
                  scale: float = 1.0) -> CrystalBonds:
    """The bonds of a crystal by VESTA's element-pair cut-offs (:func:`bond_cutoffs`).

    Two atoms (or an atom and an image) are bonded when :math:`0 < d_{ij} < s\\,
    c(Z_i, Z_j)`, with :math:`c` the table's cut-off and :math:`s` = ``scale``. Images are
    searched up to :data:`MAX_IMAGE_RANGE` cells away along each lattice vector: all of
    them whenever every cell width (the lattice-plane spacings :math:`V / |a_j \\times
    a_k|`) is at least a third of the longest cut-off of the elements present.

    Args:
        species: ``[N]`` atomic numbers.
        frac: ``[N, 3]`` fractional coordinates (any real values).
        lattice: ``[3, 3]`` lattice vectors as rows, Å.
        scale: factor on every cut-off, in ``[0, 2]`` (1: VESTA's defaults; 0: no bonds).

    Returns:
        A :class:`CrystalBonds`.

    Raises:
        DataError: shapes that do not fit, atomic numbers outside 1-118, a singular cell.
        ConfigError: ``scale`` outside ``[0, 2]``.

    Example::

        >>> import numpy as np
        >>> from labkit.atoms import crystal_bonds
        >>> # SrTiO3: Ti at the corner, O on the edge midpoints, a = 3.905 Å
        >>> frac = [[0.5, 0.5, 0.5], [0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]]
        >>> bonds = crystal_bonds([38, 22, 8, 8, 8], frac, 3.905 * np.eye(3))
        >>> bonds.coordination().tolist()  # Sr 12 O (2.76 Å), Ti 6 O, each O 2 Ti + 4 Sr
        [12, 6, 6, 6, 6]
        >>> bonds.neighbours(1)[:2]  # Ti: (neighbour, image, Å), O 2 on both sides of it
        [(2, (-1, 0, 0), 1.9525), (2, (0, 0, 0), 1.9525)]
    """
    check_range("scale", scale, 0.0, 2.0)
    z, x, lat = structure_arrays(species, frac, lattice)
    if z.size and (z.dtype.kind not in "iu" or z.min() < 1 or z.max() > MAX_Z):
        raise DataError(f"species must be atomic numbers in [1, {MAX_Z}], got {z.tolist()}")
    volume = abs(float(np.linalg.det(lat)))
    if volume < 1e-9:
        raise DataError(f"the cell is singular (volume {volume:.3g} Å^3)")
    z = z.astype(np.int64)
    n = z.shape[0]
    cut = scale * bond_cutoffs()
    present = np.unique(z)
    reach = float(cut[np.ix_(present, present)].max()) if n else 0.0
    empty = np.zeros(0, dtype=np.int64)
    if reach <= 0:
        return CrystalBonds(empty, empty, np.zeros((0, 3), dtype=np.int64), np.zeros(0), n)
    # cKDTree is defined in a compiled module that scipy ships no stub for
    from scipy.spatial import cKDTree  # pyright: ignore[reportAttributeAccessIssue]

    cells = np.floor(x)
    wrapped = x - cells
    widths = volume / np.linalg.norm(np.cross(lat[[1, 2, 0]], lat[[2, 0, 1]]), axis=1)
    span = np.minimum(np.ceil(reach / widths), MAX_IMAGE_RANGE).astype(int)
    shifts = np.array(list(itertools.product(*(range(-s, s + 1) for s in span))),
                      dtype=np.int64)
    images = (wrapped[None, :, :] + shifts[:, None, :]).reshape(-1, 3) @ lat  # [S * N, 3]
    found = cKDTree(wrapped @ lat).sparse_distance_matrix(cKDTree(images), reach,
                                                         output_type="ndarray")
    a, k, d = found["i"].astype(np.int64), found["j"].astype(np.int64), found["v"]
    b, shift = k % n, shifts[k // n]
    keep = (d > SAME_ATOM) & (d < cut[z[a], z[b]])
    # each bond appears from both ends: keep i < j, or for an atom's own image the
    # image whose first non-zero component is positive
    first = np.take_along_axis(shift, np.argmax(shift != 0, axis=1)[:, None], 1)[:, 0]
    keep &= (a < b) | ((a == b) & (first > 0))
    a, b, shift, d = a[keep], b[keep], shift[keep], d[keep]
    # images relative to the coordinates as given (not wrapped)
    image = shift - cells[b].astype(np.int64) + cells[a].astype(np.int64)
    order = np.lexsort((*image.T[::-1], b, a))
    return CrystalBonds(a[order], b[order], image[order], d[order], n)
