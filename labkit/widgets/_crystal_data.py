"""What the crystal viewer shows, computed by pure functions (no UI library here).

A crystal is ``species`` (atomic numbers ``[N]``), ``frac`` (fractional coordinates
``[N, 3]``) and ``lattice`` (``[3, 3]``, rows are the lattice vectors in Å), so that the
cartesian positions are ``frac @ lattice``. A trajectory has ``frac [T, N, 3]`` and
``lattice [T, 3, 3]``: the cell moves too (a denoising run).

:func:`as_crystal` and :func:`as_trajectory` adapt what users hold (numpy or torch arrays,
pymatgen ``Structure``, ASE ``Atoms``, batches with ``species``/``frac``/``lattice``/``mask``
and sampler results with a leading time axis) without importing pymatgen or ASE.
:func:`crystal_scene` turns one crystal into what is drawn (periodic images, bonds, cell
edges); the :class:`~labkit.widgets.CrystalViewer`, its Panel app and the static plotly
figures all call it, so a report shows what the live widget shows.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from labkit.errors import ConfigError, DataError

__all__ = [
    "BOND_SCALE",
    "COVALENT_RADII",
    "ELEMENT_COLORS",
    "ELEMENTS",
    "IMAGE_TOL",
    "Crystal",
    "CrystalScene",
    "CrystalTrajectory",
    "as_crystal",
    "as_trajectory",
    "cell_edges",
    "crystal_scene",
    "element_symbol",
]

# Element table: symbol, covalent radius in Å (Cordero et al., "Covalent radii revisited",
# Dalton Trans. 2008, 2832-2838; sp3 carbon, low-spin Mn/Fe/Co), and the Jmol colour
# (the CPK-derived scheme of the Jmol viewer, jmol.sourceforge.net/jscolors; Jmol's pink
# for elements it has no colour for), Z = 1..118 ("-": no tabulated radius).
_TABLE = """
H 0.31 FFFFFF He 0.28 D9FFFF Li 1.28 CC80FF Be 0.96 C2FF00 B 0.84 FFB5B5 C 0.76 909090
N 0.71 3050F8 O 0.66 FF0D0D F 0.57 90E050 Ne 0.58 B3E3F5 Na 1.66 AB5CF2 Mg 1.41 8AFF00
Al 1.21 BFA6A6 Si 1.11 F0C8A0 P 1.07 FF8000 S 1.05 FFFF30 Cl 1.02 1FF01F Ar 1.06 80D1E3
K 2.03 8F40D4 Ca 1.76 3DFF00 Sc 1.70 E6E6E6 Ti 1.60 BFC2C7 V 1.53 A6A6AB Cr 1.39 8A99C7
Mn 1.39 9C7AC7 Fe 1.32 E06633 Co 1.26 F090A0 Ni 1.24 50D050 Cu 1.32 C88033 Zn 1.22 7D80B0
Ga 1.22 C28F8F Ge 1.20 668F8F As 1.19 BD80E3 Se 1.20 FFA100 Br 1.20 A62929 Kr 1.16 5CB8D1
Rb 2.20 702EB0 Sr 1.95 00FF00 Y 1.90 94FFFF Zr 1.75 94E0E0 Nb 1.64 73C2C9 Mo 1.54 54B5B5
Tc 1.47 3B9E9E Ru 1.46 248F8F Rh 1.42 0A7D8C Pd 1.39 006985 Ag 1.45 C0C0C0 Cd 1.44 FFD98F
In 1.42 A67573 Sn 1.39 668080 Sb 1.39 9E63B5 Te 1.38 D47A00 I 1.39 940094 Xe 1.40 429EB0
Cs 2.44 57178F Ba 2.15 00C900 La 2.07 70D4FF Ce 2.04 FFFFC7 Pr 2.03 D9FFC7 Nd 2.01 C7FFC7
Pm 1.99 A3FFC7 Sm 1.98 8FFFC7 Eu 1.98 61FFC7 Gd 1.96 45FFC7 Tb 1.94 30FFC7 Dy 1.92 1FFFC7
Ho 1.92 00FF9C Er 1.89 00E675 Tm 1.90 00D452 Yb 1.87 00BF38 Lu 1.87 00AB24 Hf 1.75 4DC2FF
Ta 1.70 4DA6FF W 1.62 2194D6 Re 1.51 267DAB Os 1.44 266696 Ir 1.41 175487 Pt 1.36 D0D0E0
Au 1.36 FFD123 Hg 1.32 B8B8D0 Tl 1.45 A6544D Pb 1.46 575961 Bi 1.48 9E4FB5 Po 1.40 AB5C00
At 1.50 754F45 Rn 1.50 428296 Fr 2.60 420066 Ra 2.21 007D00 Ac 2.15 70ABFA Th 2.06 00BAFF
Pa 2.00 00A1FF U 1.96 008FFF Np 1.90 0080FF Pu 1.87 006BFF Am 1.80 545CF2 Cm 1.69 785CE3
Bk - 8A4FE3 Cf - A136D4 Es - B31FD4 Fm - B31FBA Md - B30DA6 No - BD0D87 Lr - C70066
Rf - CC0059 Db - D1004F Sg - D90045 Bh - E00038 Hs - E6002E Mt - EB0026 Ds - FF1493
Rg - FF1493 Cn - FF1493 Nh - FF1493 Fl - FF1493 Mc - FF1493 Lv - FF1493 Ts - FF1493
Og - FF1493
"""
#: Radius drawn for Z = 97..118, which Cordero et al. do not cover (a generative model's
#: noisy early frames may hold any Z up to 118), Å.
UNTABULATED_RADIUS = 1.70
_ROWS = np.array(_TABLE.split(), dtype=object).reshape(-1, 3)
#: Chemical symbols by atomic number (index 0 is a placeholder: no element 0).
ELEMENTS: tuple[str, ...] = ("X", *(str(s) for s in _ROWS[:, 0]))
#: Covalent radii in Å by atomic number (index 0 unused; Z > 96: UNTABULATED_RADIUS).
COVALENT_RADII = np.concatenate([[np.nan], [UNTABULATED_RADIUS if r == "-" else float(r)
                                             for r in _ROWS[:, 1]]])
#: Jmol colours as RGB in [0, 1] by atomic number (index 0 unused), ``[97, 3]``.
ELEMENT_COLORS = np.concatenate([np.full((1, 3), np.nan), np.array(
    [[int(c[i:i + 2], 16) / 255 for i in (0, 2, 4)] for c in _ROWS[:, 2]])])
MAX_Z = len(ELEMENTS) - 1

#: Two atoms are bonded when closer than ``BOND_SCALE`` times the sum of their covalent
#: radii (the usual ball-and-stick rule; 1.2 keeps ionic A-O contacts of perovskites).
BOND_SCALE = 1.2
#: A wrapped fractional coordinate within this of a cell face counts as on the face (its
#: image on the opposite face is shown too), dimensionless.
IMAGE_TOL = 1e-2
#: Limits that keep one view within what a browser and a comm message handle well.
MAX_REPEAT = 6
MAX_SHOWN_ATOMS = 20_000
#: The 12 edges of the unit cube as pairs of corner indices (corner k has fractional
#: coordinates given by the bits of k).
_CORNERS = np.array(list(itertools.product((0, 1), repeat=3)), dtype=float)
_EDGES = [(i, j) for i in range(8) for j in range(i + 1, 8)
          if np.abs(_CORNERS[i] - _CORNERS[j]).sum() == 1]


def element_symbol(z: int) -> str:
    """The chemical symbol of atomic number ``z`` (1..118); :class:`DataError` otherwise."""
    if not 1 <= int(z) <= MAX_Z:
        raise DataError(f"unknown element number {z!r}: expected an atomic number in "
                        f"[1, {MAX_Z}]")
    return ELEMENTS[int(z)]


# ---- data model ----------------------------------------------------------------------------

def _array(value: Any, name: str) -> np.ndarray:
    """numpy view of an array-like (torch tensors included, without importing torch)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} must be an array, got {type(value).__name__}: {exc}") from None


def _check_species(species: np.ndarray, shape: str) -> np.ndarray:
    if species.dtype.kind not in "iuf" or (species.dtype.kind == "f"
                                          and not np.all(species == np.round(species))):
        raise DataError(f"species must be integer atomic numbers {shape}, got dtype "
                        f"{species.dtype}")
    z = species.astype(np.int64)
    bad = z[(z < 1) | (z > MAX_Z)]
    if bad.size:
        raise DataError(f"unknown element number {int(bad[0])}: species must be atomic "
                        f"numbers in [1, {MAX_Z}]")
    return z


def _check_finite(value: np.ndarray, name: str) -> None:
    if not np.isfinite(value).all():
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(value))[0])
        raise DataError(f"{name} has non-finite values (first at index {where}: "
                        f"{float(value[where])})")


@dataclasses.dataclass(frozen=True)
class Crystal:
    """One periodic structure.

    Attributes:
        species: ``[N]`` int64 atomic numbers.
        frac: ``[N, 3]`` float64 fractional coordinates (any real values; wrapped for
            display).
        lattice: ``[3, 3]`` float64, rows are the lattice vectors in Å.
    """

    species: np.ndarray
    frac: np.ndarray
    lattice: np.ndarray

    def __post_init__(self) -> None:
        species = _array(self.species, "species")
        frac = _array(self.frac, "frac").astype(np.float64)
        lattice = _array(self.lattice, "lattice").astype(np.float64)
        if species.ndim != 1:
            raise DataError(f"species must have shape [N], got {species.shape}")
        n = species.shape[0]
        if frac.shape != (n, 3):
            raise DataError(f"frac must have shape [N, 3] = [{n}, 3] (N from species), got "
                            f"{frac.shape}")
        if lattice.shape != (3, 3):
            raise DataError(f"lattice must have shape [3, 3] (rows are lattice vectors), got "
                            f"{lattice.shape}")
        _check_finite(frac, "frac")
        _check_finite(lattice, "lattice")
        if abs(np.linalg.det(lattice)) < 1e-9:
            raise DataError(f"lattice is singular (volume {np.linalg.det(lattice):.3g} Å^3): "
                            f"{lattice.tolist()}")
        object.__setattr__(self, "species", _check_species(species, "[N]"))
        object.__setattr__(self, "frac", frac)
        object.__setattr__(self, "lattice", lattice)

    @property
    def n_atoms(self) -> int:
        return int(self.species.shape[0])

    @property
    def cart(self) -> np.ndarray:
        """``[N, 3]`` cartesian positions in Å (``frac @ lattice``)."""
        return self.frac @ self.lattice

    @property
    def symbols(self) -> list[str]:
        return [ELEMENTS[z] for z in self.species]

    @property
    def formula(self) -> str:
        """Hill-like formula in order of first appearance, e.g. ``"SrTiO3"``."""
        counts: dict[str, int] = {}
        for s in self.symbols:
            counts[s] = counts.get(s, 0) + 1
        return "".join(f"{s}{n if n > 1 else ''}" for s, n in counts.items())


@dataclasses.dataclass(frozen=True)
class CrystalTrajectory:
    """Frames of one crystal whose atoms and cell move.

    Attributes:
        species: ``[T, N]`` int64 atomic numbers per frame (usually equal rows).
        frac: ``[T, N, 3]`` fractional coordinates.
        lattice: ``[T, 3, 3]`` lattice vectors as rows, in Å.
    """

    species: np.ndarray
    frac: np.ndarray
    lattice: np.ndarray

    def __post_init__(self) -> None:
        frac = _array(self.frac, "frac").astype(np.float64)
        lattice = _array(self.lattice, "lattice").astype(np.float64)
        species = _array(self.species, "species")
        if frac.ndim != 3 or frac.shape[-1] != 3:
            raise DataError(f"trajectory frac must have shape [T, N, 3], got {frac.shape}")
        t, n = frac.shape[:2]
        if t == 0:
            raise DataError("a trajectory needs at least one frame, got T = 0")
        if lattice.shape != (t, 3, 3):
            raise DataError(f"trajectory lattice must have shape [T, 3, 3] = [{t}, 3, 3], got "
                            f"{lattice.shape}")
        if species.shape == (n,):
            species = np.broadcast_to(species, (t, n))
        if species.shape != (t, n):
            raise DataError(f"trajectory species must have shape [N] = [{n}] or [T, N] = "
                            f"[{t}, {n}], got {species.shape}")
        _check_finite(frac, "frac")
        _check_finite(lattice, "lattice")
        object.__setattr__(self, "species", np.ascontiguousarray(_check_species(species,
                                                                                "[T, N]")))
        object.__setattr__(self, "frac", frac)
        object.__setattr__(self, "lattice", lattice)

    @property
    def n_frames(self) -> int:
        return int(self.frac.shape[0])

    def frame(self, t: int) -> Crystal:
        """Frame ``t`` as a :class:`Crystal` (negative ``t`` counts from the end)."""
        if not -self.n_frames <= t < self.n_frames:
            raise ConfigError(f"frame must be in [0, {self.n_frames - 1}], got {t!r}")
        return Crystal(self.species[t], self.frac[t], self.lattice[t])

    @classmethod
    def from_crystals(cls, crystals: Sequence[Crystal]) -> CrystalTrajectory:
        """Stack crystals with the same number of atoms as frames."""
        if not crystals:
            raise DataError("a trajectory needs at least one frame, got an empty sequence")
        sizes = {c.n_atoms for c in crystals}
        if len(sizes) != 1:
            raise DataError(f"frames must all have the same number of atoms, got {sorted(sizes)}")
        return cls(np.stack([c.species for c in crystals]), np.stack([c.frac for c in crystals]),
                   np.stack([c.lattice for c in crystals]))


# ---- adaptors --------------------------------------------------------------------------------

def _check_index(index: int, size: int, what: str) -> int:
    if isinstance(index, bool) or not isinstance(index, int | np.integer) \
            or not -size <= index < size:
        raise ConfigError(f"index must be an int in [0, {size - 1}] ({size} {what}), got "
                          f"{index!r}")
    return int(index)


def _masked(obj: Any, species: np.ndarray, index: int | None) -> np.ndarray:
    """The boolean atom mask of ``obj`` (item ``index`` of a batch), all True when none."""
    mask = getattr(obj, "mask", None)
    n = species.shape[-1]
    if mask is None:
        return np.ones(n, dtype=bool)
    mask = _array(mask, "mask")
    if index is not None:
        if mask.ndim != 2 or mask.shape[-1] != n:
            raise DataError(f"mask must have shape [B, N] like species {species.shape}, got "
                            f"{mask.shape}")
        mask = mask[index]
    if mask.shape != (n,):
        raise DataError(f"mask must have shape [N] = [{n}], got {mask.shape}")
    return mask.astype(bool)


def as_crystal(obj: Any, *, index: int = 0) -> Crystal:
    """A :class:`Crystal` from what a user holds.

    Accepts a :class:`Crystal`; a pymatgen ``Structure`` (``frac_coords``,
    ``lattice.matrix``, ``atomic_numbers``); an ASE ``Atoms`` (``numbers``, ``cell``,
    ``get_scaled_positions``); a tuple ``(species, frac, lattice)`` or a mapping with those
    keys; or any object with attributes ``species``, ``frac``, ``lattice`` and optionally
    ``mask``, either one crystal (``[N]``, ``[N, 3]``, ``[3, 3]``) or a batch (``[B, N]``,
    ``[B, N, 3]``, ``[B, 3, 3]``, ``mask [B, N]``), of which item ``index`` is taken with its
    masked atoms dropped. Arrays may be numpy or torch.

    Raises:
        DataError: wrong shapes, non-finite coordinates, unknown atomic numbers.
        ConfigError: ``index`` out of range.
    """
    if isinstance(obj, Crystal):
        return obj
    if isinstance(obj, CrystalTrajectory):
        return obj.frame(-1)
    if hasattr(obj, "frac_coords") and hasattr(obj, "lattice"):  # pymatgen Structure
        try:
            numbers = [site.specie.Z for site in obj]
        except AttributeError as exc:
            raise DataError(f"a disordered pymatgen structure cannot be drawn: {exc}") from None
        return Crystal(np.array(numbers, dtype=np.int64), _array(obj.frac_coords, "frac"),
                       _array(obj.lattice.matrix, "lattice"))
    if hasattr(obj, "get_scaled_positions") and hasattr(obj, "numbers"):  # ASE Atoms
        return Crystal(_array(obj.numbers, "numbers"), obj.get_scaled_positions(wrap=False),
                       _array(obj.cell[:], "cell"))
    if isinstance(obj, tuple) and len(obj) == 3:
        species, frac, lattice = obj
    elif isinstance(obj, dict):
        missing = {"species", "frac", "lattice"} - set(obj)
        if missing:
            raise DataError(f"a crystal mapping needs keys species, frac, lattice; missing "
                            f"{sorted(missing)}")
        species, frac, lattice = obj["species"], obj["frac"], obj["lattice"]
    elif all(hasattr(obj, a) for a in ("species", "frac", "lattice")):
        species, frac, lattice = obj.species, obj.frac, obj.lattice
    else:
        raise DataError(f"cannot read a crystal from {type(obj).__name__}: expected a "
                        "pymatgen Structure, an ASE Atoms, (species, frac, lattice) or an "
                        "object with species/frac/lattice attributes")
    species, frac, lattice = (_array(species, "species"), _array(frac, "frac"),
                              _array(lattice, "lattice"))
    if species.ndim == 2:  # a batch
        if frac.ndim != 3 or lattice.ndim != 3:
            raise DataError(f"a batch needs species [B, N], frac [B, N, 3], lattice [B, 3, 3];"
                            f" got {species.shape}, {frac.shape}, {lattice.shape}")
        b = _check_index(index, species.shape[0], "structures in the batch")
        if frac.shape[0] != species.shape[0] or lattice.shape[0] != species.shape[0]:
            raise DataError(f"batch sizes differ: species {species.shape}, frac {frac.shape}, "
                            f"lattice {lattice.shape} (expected [B, N], [B, N, 3], [B, 3, 3])")
        keep = _masked(obj, species, b)
        if frac.shape[1:] != (species.shape[1], 3):
            raise DataError(f"frac must have shape [B, N, 3] = [{species.shape[0]}, "
                            f"{species.shape[1]}, 3], got {frac.shape}")
        return Crystal(species[b][keep], frac[b][keep], lattice[b])
    keep = _masked(obj, species, None) if species.ndim == 1 else slice(None)
    if species.ndim == 1 and frac.ndim == 2 and frac.shape[0] == species.shape[0]:
        return Crystal(species[keep], frac[keep], lattice)
    return Crystal(species, frac, lattice)  # raises with the expected shapes


def as_trajectory(obj: Any, *, index: int = 0) -> CrystalTrajectory:
    """A :class:`CrystalTrajectory` from what a user holds.

    Accepts a :class:`CrystalTrajectory`; a sequence of crystals (anything
    :func:`as_crystal` reads) as frames; or an object (or mapping) with ``frac`` ``[T, N, 3]``
    or ``[T, B, N, 3]``, ``lattice`` ``[T, 3, 3]`` or ``[T, B, 3, 3]``, ``species`` ``[N]``,
    ``[B, N]``, ``[T, N]`` or ``[T, B, N]`` and optionally ``mask`` (``[N]`` or ``[B, N]``) —
    a sampler's result — of which batch item ``index`` is taken and masked atoms dropped.
    labkit's ``SampleResult`` (``frac_trajectory [B, S, N, 3]``, ``lattice_trajectory
    [B, S, 3, 3]``, ``species_trajectory [B, S, N]``, ``mask [B, N]``) gives item ``index``.
    Anything else :func:`as_crystal` reads becomes a one-frame trajectory.

    Raises:
        DataError: wrong shapes, non-finite coordinates, unknown atomic numbers.
        ConfigError: ``index`` out of range.
    """
    if isinstance(obj, CrystalTrajectory):
        return obj
    if isinstance(obj, list) or (isinstance(obj, tuple) and len(obj) != 3):
        return CrystalTrajectory.from_crystals([as_crystal(o, index=index) for o in obj])
    if hasattr(obj, "frac_trajectory") and hasattr(obj, "lattice_trajectory"):
        return _sample_result_trajectory(obj, index)
    if isinstance(obj, dict) and {"species", "frac", "lattice"} <= set(obj):
        get = obj.__getitem__
    elif all(hasattr(obj, a) for a in ("species", "frac", "lattice")) \
            and not hasattr(obj, "frac_coords"):
        def get(name: str) -> Any:
            return getattr(obj, name)
    else:
        return CrystalTrajectory.from_crystals([as_crystal(obj, index=index)])
    frac, lattice, species = (_array(get("frac"), "frac"), _array(get("lattice"), "lattice"),
                              _array(get("species"), "species"))
    if frac.ndim != 4 and not (frac.ndim == 3 and species.ndim == 1):
        # [B, N, 3] with species [B, N] is a batch (labkit's AtomsBatch); [N, 3] one crystal.
        return CrystalTrajectory.from_crystals([as_crystal(obj, index=index)])
    mask = obj.get("mask") if isinstance(obj, dict) else getattr(obj, "mask", None)
    mask = None if mask is None else _array(mask, "mask")
    if frac.ndim == 4:  # [T, B, N, 3]
        t, b_size, n = frac.shape[:3]
        b = _check_index(index, b_size, "structures in the batch")
        if lattice.shape != (t, b_size, 3, 3):
            raise DataError(f"lattice must have shape [T, B, 3, 3] = [{t}, {b_size}, 3, 3] like "
                            f"frac {frac.shape}, got {lattice.shape}")
        if species.shape == (t, b_size, n):
            species = species[:, b]
        elif species.shape == (b_size, n):
            species = species[b]
        else:
            raise DataError(f"species must have shape [B, N] = [{b_size}, {n}] or [T, B, N], "
                            f"got {species.shape}")
        frac, lattice = frac[:, b], lattice[:, b]
        if mask is not None:
            if mask.shape != (b_size, n):
                raise DataError(f"mask must have shape [B, N] = [{b_size}, {n}], got "
                                f"{mask.shape}")
            mask = mask[b]
    if mask is not None:
        keep = mask.astype(bool)
        if keep.shape != (frac.shape[-2],):
            raise DataError(f"mask must have shape [N] = [{frac.shape[-2]}], got {keep.shape}")
        frac = frac[..., keep, :]
        species = species[..., keep]
    return CrystalTrajectory(species, frac, lattice)


def _sample_result_trajectory(obj: Any, index: int) -> CrystalTrajectory:
    """Item ``index`` of a sampler result in labkit's ``[*batch, time, state]`` layout:
    ``frac_trajectory [B, S, N, 3]``, ``lattice_trajectory [B, S, 3, 3]``,
    ``species_trajectory [B, S, N]`` (or ``species [B, N]``) and ``mask [B, N]``."""
    frac = _array(obj.frac_trajectory, "frac_trajectory")
    lattice = _array(obj.lattice_trajectory, "lattice_trajectory")
    if frac.ndim != 4 or frac.shape[-1] != 3:
        raise DataError(f"frac_trajectory must have shape [B, S, N, 3], got {frac.shape}")
    b_size, s, n = frac.shape[:3]
    if lattice.shape != (b_size, s, 3, 3):
        raise DataError(f"lattice_trajectory must have shape [B, S, 3, 3] = [{b_size}, {s}, 3, "
                        f"3], got {lattice.shape}")
    b = _check_index(index, b_size, "structures in the batch")
    per_step = getattr(obj, "species_trajectory", None)
    species = _array(per_step if per_step is not None else obj.species, "species")
    if species.shape == (b_size, s, n):
        species = species[b]
    elif species.shape == (b_size, n):
        species = species[b]
    else:
        raise DataError(f"species_trajectory must have shape [B, S, N] = [{b_size}, {s}, {n}] "
                        f"(or species [B, N]), got {species.shape}")
    species_for_mask = np.zeros((b_size, n))
    keep = _masked(obj, species_for_mask, b)
    return CrystalTrajectory(species[..., keep], frac[b][:, keep], lattice[b])


# ---- what is drawn ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class CrystalScene:
    """One crystal as drawn: the shown atoms (periodic images included), bonds and cell.

    Attributes:
        cart: ``[M, 3]`` cartesian positions of the shown atoms, Å.
        frac: ``[M, 3]`` their fractional coordinates in the unit cell's basis (an image on
            the far face has a coordinate equal to the repeat, e.g. ``1.0``).
        source: ``[M]`` index of the atom of the crystal each shown atom is an image of.
        species: ``[M]`` atomic numbers; ``radii`` ``[M]`` covalent radii (Å); ``colors``
            ``[M, 3]`` RGB in [0, 1].
        bonds: ``[K, 2]`` pairs of indices into the shown atoms, ``i < j``.
        dangling: ``[D]`` shown atoms bonded to an image that is not shown (across the
            boundary), and ``partners`` ``[D, 3]`` where that image is (cartesian Å): drawn
            as half-bonds, so bonds stay periodic without showing more atoms.
        cell: ``[12, 2, 3]`` the unit cell's edges (start and end, cartesian Å).
        centre: ``[3]`` centre of the repeated cell, Å.
        crystal: the crystal drawn.
    """

    cart: np.ndarray
    frac: np.ndarray
    source: np.ndarray
    species: np.ndarray
    radii: np.ndarray
    colors: np.ndarray
    bonds: np.ndarray
    dangling: np.ndarray
    partners: np.ndarray
    cell: np.ndarray
    centre: np.ndarray
    crystal: Crystal

    @property
    def n_shown(self) -> int:
        return int(self.source.shape[0])


def check_repeat(repeat: Any) -> tuple[int, int, int]:
    """``repeat`` as three ints in ``[1, MAX_REPEAT]``; :class:`ConfigError` otherwise."""
    try:
        values = tuple(repeat)
    except TypeError:
        values = ()
    if len(values) != 3 or not all(isinstance(v, int | np.integer) and not isinstance(v, bool)
                                   and 1 <= v <= MAX_REPEAT for v in values):
        raise ConfigError(f"repeat must be three ints in [1, {MAX_REPEAT}] (cells along a, b, "
                          f"c), got {repeat!r}")
    return tuple(int(v) for v in values)  # type: ignore[return-value]


def check_bond_scale(scale: Any) -> float:
    if isinstance(scale, bool) or not isinstance(scale, int | float | np.floating) \
            or not 0.0 <= float(scale) <= 3.0:
        raise ConfigError(f"bond_scale must be a number in [0, 3] (times the sum of covalent "
                          f"radii), got {scale!r}")
    return float(scale)


def cell_edges(lattice: np.ndarray) -> np.ndarray:
    """The 12 edges of the cell spanned by the rows of ``lattice``, ``[12, 2, 3]`` in Å."""
    corners = _CORNERS @ np.asarray(lattice, dtype=np.float64)
    return np.stack([[corners[i], corners[j]] for i, j in _EDGES])


def shown_images(frac: np.ndarray, repeat: tuple[int, int, int] = (1, 1, 1), *,
                 images: bool = True, tol: float = IMAGE_TOL
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fractional positions of the atoms shown in ``repeat`` cells, their sources, and the
    images just outside (a halo one cell thick, for bonds that cross the boundary).

    Coordinates are wrapped into ``[0, 1)``; each atom appears once per repeated cell, and
    with ``images`` an atom within ``tol`` of a cell face also on the opposite face (so a
    corner atom appears at all 8 corners, an edge atom on 4 edges, a face atom on 2 faces),
    as crystal viewers draw them.

    Returns:
        ``(frac [M, 3], source [M], halo_frac [H, 3], halo_source [H])``, by source atom.
    """
    wrapped = np.mod(frac, 1.0)
    wrapped[wrapped > 1.0 - tol] -= 1.0  # 0.9999 is on the face at 0
    reps = np.asarray(repeat)
    shifts = np.array(list(itertools.product(*(range(-1, r + 2) for r in repeat))),
                      dtype=np.float64)
    cand = wrapped[:, None, :] + shifts[None, :, :]  # [N, S, 3]
    if images:
        shown = ((cand >= -tol) & (cand <= reps + tol)).all(-1)
    else:
        shown = np.broadcast_to(((shifts >= 0) & (shifts < reps)).all(-1), cand.shape[:2])
    src, which = np.nonzero(shown)
    hsrc, hwhich = np.nonzero(~shown)
    return cand[src, which], src, cand[hsrc, hwhich], hsrc


def crystal_scene(crystal: Any, *, repeat: Sequence[int] = (1, 1, 1), images: bool = True,
                  bonds: bool = True, bond_scale: float = BOND_SCALE) -> CrystalScene:
    """What to draw for ``crystal`` (anything :func:`as_crystal` reads).

    Args:
        repeat: cells along ``a``, ``b``, ``c`` (each in ``[1, 6]``).
        images: also show atoms on faces, edges and corners on the opposite ones.
        bonds: find bonds: a pair closer than ``bond_scale`` times the sum of their
            covalent radii. Periodic: a bond to an image that is not shown (across the
            boundary) is kept as a half-bond (``dangling``/``partners``).
        bond_scale: see ``bonds``.

    Raises:
        ConfigError: bad ``repeat`` or ``bond_scale``, or more than 20,000 atoms to show.
    """
    c = as_crystal(crystal)
    reps = check_repeat(repeat)
    scale = check_bond_scale(bond_scale)
    frac, src, halo_frac, halo_src = shown_images(c.frac, reps, images=images)
    if len(src) > MAX_SHOWN_ATOMS:
        raise ConfigError(f"{len(src)} atoms to show with repeat={list(reps)}; at most "
                          f"{MAX_SHOWN_ATOMS}: use a smaller repeat")
    cart = frac @ c.lattice
    species = c.species[src]
    radii = COVALENT_RADII[species]
    pairs = np.zeros((0, 2), dtype=np.int64)
    dangling, partners = np.zeros(0, dtype=np.int64), np.zeros((0, 3))
    if bonds and len(src) > 0 and scale > 0:
        from scipy.spatial import cKDTree

        halo = halo_frac @ c.lattice
        allpos = np.concatenate([cart, halo])
        allrad = np.concatenate([radii, COVALENT_RADII[c.species[halo_src]]])
        reach = scale * 2 * float(allrad.max())
        cand = cKDTree(allpos).query_pairs(reach, output_type="ndarray")
        m = len(src)
        cand = cand[(cand[:, 0] < m) | (cand[:, 1] < m)]  # at least one shown atom
        if len(cand):
            d = np.linalg.norm(allpos[cand[:, 0]] - allpos[cand[:, 1]], axis=-1)
            keep = (d < scale * (allrad[cand[:, 0]] + allrad[cand[:, 1]])) & (d > 1e-6)
            cand = np.sort(cand[keep], axis=1)  # shown index first (shown atoms come first)
            inner = cand[cand[:, 1] < m]
            pairs = inner[np.lexsort((inner[:, 1], inner[:, 0]))]
            outer = cand[cand[:, 1] >= m]
            outer = outer[np.lexsort((outer[:, 1], outer[:, 0]))]
            dangling, partners = outer[:, 0], allpos[outer[:, 1]]
    centre = (np.asarray(reps, dtype=np.float64) / 2) @ c.lattice
    return CrystalScene(cart=cart, frac=frac, source=src, species=species, radii=radii,
                        colors=ELEMENT_COLORS[species], bonds=pairs, dangling=dangling,
                        partners=partners,
                        cell=cell_edges(c.lattice), centre=centre, crystal=c)


# ---- packing for the browser -------------------------------------------------------------------

#: Floats per shown atom in the ``atoms`` buffer: x y z (Å), fa fb fc (fractional), r g b,
#: covalent radius (Å), atomic number, index of the source atom.
ATOM_STRIDE = 12
#: Floats per vertex of the ``bonds`` buffer (x y z r g b); a bond is two half-bonds, each
#: coloured by its own atom, so four vertices.
BOND_STRIDE = 6


@dataclasses.dataclass(frozen=True)
class ScenePayload:
    """Frames of one or more panels packed as float32/int32 buffers for the front end.

    Panel ``p`` at frame ``f`` is slot ``panels[p]["slot"] + min(f, panels[p]["frames"] - 1)``
    (a single structure beside a trajectory stays put). Slot ``s`` owns atoms
    ``atom_offsets[s]:atom_offsets[s + 1]`` (rows of :data:`ATOM_STRIDE` floats), bond vertices
    ``bond_offsets[s]:bond_offsets[s + 1]`` (rows of :data:`BOND_STRIDE`: two half-bonds per bond between shown atoms, then one per
    dangling bond), the 24 cell-edge
    vertices ``cells[s]`` and the view centre ``centres[s]``.
    """

    atoms: np.ndarray
    atom_offsets: np.ndarray
    bonds: np.ndarray
    bond_offsets: np.ndarray
    cells: np.ndarray
    centres: np.ndarray
    panels: list[dict[str, Any]]
    n_frames: int
    extent: float
    elements: dict[str, str]


def pack_scenes(trajectories: Sequence[CrystalTrajectory], titles: Sequence[str], *,
                repeat: Sequence[int] = (1, 1, 1), images: bool = True, bonds: bool = True,
                bond_scale: float = BOND_SCALE) -> ScenePayload:
    """Every frame of every panel through :func:`crystal_scene`, packed for the browser."""
    atoms, bond_rows, cells, centres = [], [], [], []
    atom_offsets, bond_offsets = [0], [0]
    panels, seen = [], set()
    extent = 1e-6
    for title, traj in zip(titles, trajectories, strict=True):
        panels.append({"title": str(title), "frames": traj.n_frames, "slot": len(cells),
                       "formula": traj.frame(0).formula})
        for t in range(traj.n_frames):
            sc = crystal_scene(traj.frame(t), repeat=repeat, images=images, bonds=bonds,
                               bond_scale=bond_scale)
            rows = np.empty((sc.n_shown, ATOM_STRIDE), dtype=np.float32)
            rows[:, 0:3], rows[:, 3:6], rows[:, 6:9] = sc.cart, sc.frac, sc.colors
            rows[:, 9], rows[:, 10], rows[:, 11] = sc.radii, sc.species, sc.source
            atoms.append(rows)
            atom_offsets.append(atom_offsets[-1] + sc.n_shown)
            i, j = sc.bonds[:, 0], sc.bonds[:, 1]
            mid = (sc.cart[i] + sc.cart[j]) / 2
            verts = np.empty((len(i), 4, BOND_STRIDE), dtype=np.float32)
            verts[:, 0, :3], verts[:, 1, :3] = sc.cart[i], mid
            verts[:, 2, :3], verts[:, 3, :3] = mid, sc.cart[j]
            verts[:, 0:2, 3:] = sc.colors[i][:, None]
            verts[:, 2:4, 3:] = sc.colors[j][:, None]
            half = np.empty((len(sc.dangling), 2, BOND_STRIDE), dtype=np.float32)
            half[:, 0, :3] = sc.cart[sc.dangling]
            half[:, 1, :3] = (sc.cart[sc.dangling] + sc.partners) / 2
            half[:, :, 3:] = sc.colors[sc.dangling][:, None]
            bond_rows += [verts.reshape(-1, BOND_STRIDE), half.reshape(-1, BOND_STRIDE)]
            bond_offsets.append(bond_offsets[-1] + 4 * len(i) + 2 * len(sc.dangling))
            cells.append(sc.cell.reshape(24, 3))
            centres.append(sc.centre)
            corners = np.concatenate([sc.cell.reshape(-1, 3), sc.cart])
            extent = max(extent, float(np.linalg.norm(corners.max(0) - corners.min(0))))
            seen.update(int(z) for z in np.unique(sc.species))
    return ScenePayload(
        atoms=np.ascontiguousarray(np.concatenate(atoms), dtype=np.float32),
        atom_offsets=np.asarray(atom_offsets, dtype=np.int32),
        bonds=np.ascontiguousarray(np.concatenate(bond_rows), dtype=np.float32),
        bond_offsets=np.asarray(bond_offsets, dtype=np.int32),
        cells=np.ascontiguousarray(np.stack(cells), dtype=np.float32),
        centres=np.ascontiguousarray(np.stack(centres), dtype=np.float32),
        panels=panels, n_frames=max(p["frames"] for p in panels), extent=extent,
        elements={str(z): ELEMENTS[z] for z in sorted(seen)})
