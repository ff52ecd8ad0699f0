"""The crystal viewer's data model and its adaptors (no UI library, pymatgen or ASE here).

A :class:`Crystal` is ``species`` (atomic numbers ``[N]``), ``frac`` (fractional
coordinates ``[N, 3]``) and ``lattice`` (``[3, 3]``, rows are the lattice vectors in Å); a
:class:`CrystalTrajectory` has ``frac [T, N, 3]`` and ``lattice [T, 3, 3]``. :func:`as_crystal`
and :func:`as_trajectory` adapt what users hold (numpy or torch arrays, pymatgen
``Structure``, ASE ``Atoms``, batches and sampler results) by duck typing. Public through
:mod:`labkit.widgets._crystal_data` and :mod:`labkit.widgets`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from labkit.errors import ConfigError, DataError
from labkit.widgets._elements import ELEMENTS, MAX_Z

__all__ = ["Crystal", "CrystalTrajectory", "as_crystal", "as_trajectory"]


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
        species, frac, lattice = (getattr(obj, a) for a in ("species", "frac", "lattice"))
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
    get: Callable[[str], Any]
    if isinstance(obj, dict) and {"species", "frac", "lattice"} <= set(obj):
        get = obj.__getitem__
    elif all(hasattr(obj, a) for a in ("species", "frac", "lattice")) \
            and not hasattr(obj, "frac_coords"):
        get = functools.partial(getattr, obj)
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
