"""Reading, writing and generating atomic structures. The only module that imports ASE
(lazily); files are written with pymatgen's writers (CIF, VASP POSCAR)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from labkit.core.config import check_int, check_positive
from labkit.core.rng import numpy_rng
from labkit.errors import ConfigError, DataError

__all__ = [
    "Conformers",
    "arrays_to_ase",
    "arrays_to_structure",
    "ase_to_arrays",
    "g2_conformers",
    "read_cdvae_csv",
    "read_cif",
    "sample_crystals",
    "structure_to_arrays",
    "structure_file_format",
    "write_structure",
]

#: File formats :func:`write_structure` writes, by file name: a suffix, or for VASP a name
#: holding POSCAR or CONTCAR (as pymatgen's ``Structure.from_file`` reads them).
STRUCTURE_SUFFIXES = {".cif": "cif", ".vasp": "poscar", ".poscar": "poscar"}
POSCAR_NAMES = ("POSCAR", "CONTCAR")
#: Elements ASE's EMT calculator has parameters for.
EMT_ELEMENTS = frozenset({"H", "C", "N", "O", "Al", "Ni", "Cu", "Pd", "Ag", "Pt", "Au"})


@dataclasses.dataclass(frozen=True)
class Conformers:
    """Configurations of one molecule.

    Attributes:
        name: the G2 name (e.g. ``"CH4"``).
        symbols: chemical symbols, one per atom.
        positions: ``[S, N, 3]`` in Angstrom.
        energies: ``[S]`` EMT potential energies in eV.
    """

    name: str
    symbols: tuple[str, ...]
    positions: np.ndarray
    energies: np.ndarray


def g2_conformers(
    molecule: str = "CH4", n_samples: int = 1000, *, jitter: float = 0.05,
    seed: int | np.random.Generator | None = 0,
) -> Conformers:
    """Randomly oriented, slightly distorted copies of a molecule from ASE's G2 set, with
    energies from ASE's effective-medium (EMT) calculator.

    Each sample is the G2 geometry, centred, with Gaussian noise of ``jitter`` Angstrom on
    every coordinate, then rotated by a Haar-random element of SO(3). Energies are
    invariant under rotations, so the data carry an exact SO(3) symmetry acting on every
    atom's position at once. ``seed``: an int or ``None`` (fresh entropy) for
    :func:`labkit.core.numpy_rng`, or a ``numpy.random.Generator`` used as is.

    Raises:
        ConfigError: for a name not in G2, or a molecule with elements EMT cannot handle.
    """
    from ase.calculators.emt import EMT
    from ase.collections import g2

    check_int("n_samples", n_samples)
    check_positive("jitter", jitter, allow_zero=True)
    if molecule not in g2.names:
        import difflib

        close = difflib.get_close_matches(molecule, g2.names, n=3)
        raise ConfigError(f"{molecule!r} is not in ASE's G2 collection; closest: {close}")
    atoms = g2[molecule]
    symbols = tuple(atoms.get_chemical_symbols())
    missing = sorted(set(symbols) - EMT_ELEMENTS)
    if missing:
        raise ConfigError(f"EMT has no parameters for {missing} in {molecule!r}; "
                          f"use a molecule made of {sorted(EMT_ELEMENTS)}")
    rng = seed if isinstance(seed, np.random.Generator) else numpy_rng(seed)
    base = atoms.get_positions() - atoms.get_positions().mean(0)
    q, r = np.linalg.qr(rng.normal(size=(n_samples, 3, 3)))
    q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    q[np.linalg.det(q) < 0, :, 0] *= -1
    noisy = base[None] + jitter * rng.normal(size=(n_samples, *base.shape))
    positions = np.einsum("sij,snj->sni", q, noisy)
    calc = EMT()
    energies = np.empty(n_samples)
    for s in range(n_samples):
        atoms.positions = positions[s]
        atoms.calc = calc
        energies[s] = atoms.get_potential_energy()
    return Conformers(molecule, symbols, positions, energies)


def read_cif(text: str, *, row: int | str | None = None):
    """Parse one CIF string into an ASE ``Atoms``; errors name the row they came from."""
    import io as _io

    import ase.io

    where = f" (row {row})" if row is not None else ""
    if not isinstance(text, str) or "_cell_length_a" not in text:
        raise DataError(f"not a CIF string{where}: {str(text)[:60]!r}")
    try:
        return ase.io.read(_io.StringIO(text), format="cif")
    except Exception as exc:  # ASE raises many types for malformed CIFs
        raise DataError(f"could not parse the CIF{where}: {exc}") from exc


def read_cdvae_csv(path, *, limit: int | None = None) -> list:
    """Structures of a CDVAE-format CSV (one P1 CIF per row in a ``cif`` column) as ASE
    ``Atoms``, in file order; a bad row raises :class:`DataError` naming its number."""
    import csv
    from pathlib import Path

    if limit is not None:
        check_int("limit", limit)
    p = Path(path)
    if not p.is_file():
        raise DataError(f"no CDVAE CSV at {p}")
    out = []
    with p.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if "cif" not in (reader.fieldnames or []):
            raise DataError(f"{p} has no 'cif' column; columns: {reader.fieldnames}")
        for i, row in enumerate(reader):
            if limit is not None and i >= limit:
                break
            out.append(read_cif(row["cif"], row=i))
    return out


def sample_crystals(name: str = "perov_5") -> list:
    """The real crystals shipped with labkit: the first 400 rows of perov-5's and the
    first 24 of carbon-24's official CDVAE validation splits (``labkit/atoms/data``)."""
    from pathlib import Path

    choices = ("perov_5", "carbon_24")
    if name not in choices:
        raise ConfigError(f"name must be one of {list(choices)}, got {name!r}")
    return read_cdvae_csv(Path(__file__).parent / "data" / f"{name}_sample.csv")


# -- adaptors between (species, frac, lattice) arrays and ASE / pymatgen ---------------
def ase_to_arrays(atoms, *, index: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(species [n], frac [n, 3], lattice [3, 3])`` of a periodic ASE ``Atoms``."""
    where = f"structure {index}: " if index is not None else ""
    if not hasattr(atoms, "get_scaled_positions") or not hasattr(atoms, "cell"):
        raise DataError(f"{where}expected an ase.Atoms, got {type(atoms).__name__}")
    lattice = np.asarray(atoms.cell.array, dtype=np.float64)
    if abs(np.linalg.det(lattice)) < 1e-6:
        raise DataError(f"{where}ASE Atoms has no 3-D cell (cell {lattice.tolist()})")
    return (np.asarray(atoms.numbers, dtype=np.int64),
            np.asarray(atoms.get_scaled_positions(wrap=False), dtype=np.float64), lattice)


def arrays_to_ase(species, frac, lattice):
    """A periodic ASE ``Atoms`` from arrays (lattice rows are the cell vectors)."""
    from ase import Atoms

    return Atoms(numbers=np.asarray(species), scaled_positions=np.asarray(frac),
                 cell=np.asarray(lattice), pbc=True)


def structure_to_arrays(structure, *, index: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(species [n], frac [n, 3], lattice [3, 3])`` of an ordered pymatgen ``Structure``."""
    where = f"structure {index}: " if index is not None else ""
    if not hasattr(structure, "lattice") or not hasattr(structure, "frac_coords"):
        raise DataError(f"{where}expected a pymatgen Structure, got {type(structure).__name__}")
    if not getattr(structure, "is_ordered", True):
        raise DataError(f"{where}disordered structures (partial occupancies) are not supported: "
                        f"{structure.composition}")
    species = np.array([site.specie.Z for site in structure], dtype=np.int64)
    return (species, np.asarray(structure.frac_coords, dtype=np.float64),
            np.asarray(structure.lattice.matrix, dtype=np.float64))


def arrays_to_structure(species, frac, lattice):
    """A pymatgen ``Structure`` from arrays (lattice rows are the lattice vectors)."""
    from pymatgen.core import Lattice, Structure

    # pymatgen takes atomic numbers as species; its CompositionLike annotation omits int.
    return Structure(Lattice(np.asarray(lattice, dtype=np.float64)),
                     [int(z) for z in species],  # pyright: ignore[reportArgumentType]
                     np.asarray(frac, dtype=np.float64), coords_are_cartesian=False)


# -- writing structures --------------------------------------------------------------
def structure_file_format(path) -> str:
    """``"cif"`` or ``"poscar"``: the format :func:`write_structure` picks for ``path``, by
    its suffix (``.cif``; ``.vasp``, ``.poscar``; any case) or a VASP name (one holding
    ``POSCAR`` or ``CONTCAR``, e.g. ``POSCAR``, ``POSCAR.relaxed``, ``truth_CONTCAR``).

    Raises:
        ConfigError: any other name, quoting it and its extension.
    """
    from pathlib import Path

    p = Path(path)
    fmt = STRUCTURE_SUFFIXES.get(p.suffix.lower())
    if fmt is None and any(name in p.name for name in POSCAR_NAMES):
        fmt = "poscar"
    if fmt is None:
        raise ConfigError(
            f"cannot tell the format of {p.name!r} from its extension {p.suffix or '(none)'!r}: "
            f"use {', '.join(STRUCTURE_SUFFIXES)} or a name holding {' or '.join(POSCAR_NAMES)}")
    return fmt


def write_structure(structure, path, *, comment: str | None = None):
    """Write one crystal to ``path`` as CIF or VASP POSCAR, chosen by the file name
    (:func:`structure_file_format`), with pymatgen's writers (``CifWriter``, ``Poscar``).

    The CIF is written in P1 (every atom listed, no symmetry search), the POSCAR with
    fractional coordinates, atoms in their order (consecutive atoms of one element share a
    species line). Both read back with ``pymatgen.core.Structure.from_file`` to the same
    lattice, species and coordinates.

    Args:
        structure: a pymatgen ``Structure``, an ASE ``Atoms`` or ``(species [N], frac
            [N, 3], lattice [3, 3])`` (lattice vectors as rows, Å).
        path: the file to write (its folder must exist).
        comment: POSCAR's first line (default: the reduced formula); ignored for CIF.

    Returns:
        The path written, as a ``pathlib.Path``.

    Raises:
        ConfigError: a file name whose format is not known.
        DataError: a structure that cannot be read, or a missing folder.
    """
    from pathlib import Path

    from pymatgen.io.cif import CifWriter
    from pymatgen.io.vasp import Poscar

    p = Path(path)
    fmt = structure_file_format(p)
    crystal: Any
    if isinstance(structure, tuple) and len(structure) == 3:
        species, frac, lattice = (np.asarray(v) for v in structure)
        if species.ndim != 1 or frac.shape != (species.shape[0], 3) or lattice.shape != (3, 3):
            raise DataError(f"expected (species [N], frac [N, 3], lattice [3, 3]), got shapes "
                            f"{species.shape}, {frac.shape}, {lattice.shape}")
        crystal = arrays_to_structure(species, frac, lattice)
    elif hasattr(structure, "get_scaled_positions"):
        crystal = arrays_to_structure(*ase_to_arrays(structure))
    else:
        structure_to_arrays(structure)  # raises a named DataError for anything else
        crystal = structure
    if not p.parent.is_dir():
        raise DataError(f"cannot write {p}: no folder {p.parent}")
    if fmt == "cif":
        CifWriter(crystal).write_file(str(p))
    else:
        Poscar(crystal, comment=comment).write_file(str(p))
    return p
