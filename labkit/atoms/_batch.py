"""A batch of periodic structures as dense, padded tensors.

One crystal is species (atomic numbers), fractional coordinates and a lattice whose
*rows* are the lattice vectors in Angstrom, so Cartesian positions are ``frac @ lattice``
(the convention of ASE's ``cell`` and pymatgen's ``Lattice.matrix``). A batch pads every
crystal to the largest atom count and carries a mask, so the whole batch is a handful of
tensors that move to a GPU in one call and feed dense all-pairs layers directly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from labkit.core.shapes import AtomMask, FracCoords, Lattices, Species
from labkit.errors import ConfigError, DataError

__all__ = ["AtomsBatch", "MAX_Z"]

#: Largest atomic number accepted (oganesson).
MAX_Z = 118
#: Smallest accepted cell volume, in A^3, before a lattice counts as degenerate.
MIN_VOLUME = 1e-6


def _float_array(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float64).numpy()
    return np.array(x, dtype=np.float64)


@dataclasses.dataclass(frozen=True)
class AtomsBatch:
    """``B`` periodic structures padded to ``N`` atoms.

    Attributes:
        species: ``[B, N]`` int64 atomic numbers, 0 on padding.
        frac: ``[B, N, 3]`` fractional coordinates, in ``[0, 1)`` after :meth:`wrapped`;
            0 on padding.
        lattice: ``[B, 3, 3]`` lattice vectors as rows, Angstrom.
        mask: ``[B, N]`` bool, True for real atoms. Real atoms come first in each row.
        ids: one label per structure (material ids, or ``"0"``, ``"1"``, ...).

    Example:
        >>> import torch
        >>> b = AtomsBatch.from_arrays([([11, 17], [[0, 0, 0], [0.5, 0.5, 0.5]], 5.6 * torch.eye(3))])
        >>> b.n_atoms.tolist(), round(float(b.volume()[0]), 3)
        ([2], 175.616)
    """

    species: Species
    frac: FracCoords
    lattice: Lattices
    mask: AtomMask
    ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        s, f, lat, m = self.species, self.frac, self.lattice, self.mask
        for name, t in (("species", s), ("frac", f), ("lattice", lat), ("mask", m)):
            if not isinstance(t, torch.Tensor):
                raise ConfigError(f"AtomsBatch.{name} must be a torch.Tensor, got {type(t).__name__}")
        if s.ndim != 2:
            raise ConfigError(f"species must have shape [B, N], got {tuple(s.shape)}")
        b, n = s.shape
        if f.shape != (b, n, 3):
            raise ConfigError(f"frac must have shape [B, N, 3] = [{b}, {n}, 3], got {tuple(f.shape)}")
        if lat.shape != (b, 3, 3):
            raise ConfigError(f"lattice must have shape [B, 3, 3] = [{b}, 3, 3], got {tuple(lat.shape)}")
        if m.shape != (b, n) or m.dtype != torch.bool:
            raise ConfigError(f"mask must be a bool tensor of shape [{b}, {n}], got {m.dtype} {tuple(m.shape)}")
        if s.dtype != torch.int64:
            raise ConfigError(f"species must be int64 atomic numbers, got {s.dtype}")
        if not (f.is_floating_point() and lat.is_floating_point()):
            raise ConfigError(f"frac and lattice must be floating point, got {f.dtype} and {lat.dtype}")
        ids = tuple(str(i) for i in self.ids) if self.ids else tuple(str(i) for i in range(b))
        if len(ids) != b:
            raise ConfigError(f"ids must have one entry per structure ({b}), got {len(ids)}")
        object.__setattr__(self, "ids", ids)

    # -- shape ------------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        return self.species.shape[0]

    @property
    def max_atoms(self) -> int:
        return self.species.shape[1]

    @property
    def n_atoms(self) -> Int[Tensor, " batch"]:
        """``[B]`` number of real atoms per structure."""
        return self.mask.sum(-1)

    @property
    def device(self) -> torch.device:
        return self.frac.device

    @property
    def dtype(self) -> torch.dtype:
        return self.frac.dtype

    def __len__(self) -> int:
        return self.batch_size

    def __getitem__(self, index: int | slice | Sequence[int] | torch.Tensor) -> AtomsBatch:
        """A sub-batch (an int gives a batch of one), trimmed to its own largest structure."""
        if isinstance(index, int):
            if not -self.batch_size <= index < self.batch_size:
                raise IndexError(f"structure {index} out of range for a batch of {self.batch_size}")
            index = [index % self.batch_size]
        rows = torch.arange(self.batch_size)[index]
        rows = rows.reshape(-1)
        n = int(self.mask[rows].sum(-1).max()) if len(rows) else 0
        return AtomsBatch(self.species[rows, :n], self.frac[rows, :n], self.lattice[rows],
                          self.mask[rows, :n], tuple(self.ids[int(i)] for i in rows))

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> AtomsBatch:
        """Move to ``device`` and/or cast the float tensors to ``dtype``."""
        return AtomsBatch(self.species.to(device), self.frac.to(device, dtype),
                          self.lattice.to(device, dtype), self.mask.to(device), self.ids)

    # -- geometry ---------------------------------------------------------------------
    def cartesian(self) -> Float[Tensor, "batch atoms 3"]:
        """``[B, N, 3]`` Cartesian positions ``frac @ lattice`` in Angstrom (0 on padding)."""
        return (self.frac @ self.lattice) * self.mask[..., None]

    def volume(self) -> Float[Tensor, " batch"]:
        """``[B]`` cell volumes :math:`|\\det L|` in A^3."""
        return torch.linalg.det(self.lattice).abs()

    def lattice_parameters(self) -> tuple[Float[Tensor, "batch 3"], Float[Tensor, "batch 3"]]:
        """``(lengths [B, 3] in A, angles [B, 3] in degrees)``: a, b, c and alpha (between b
        and c), beta (c, a), gamma (a, b)."""
        lat = self.lattice
        lengths = lat.norm(dim=-1)
        def angle(i: int, j: int) -> torch.Tensor:
            cos = (lat[:, i] * lat[:, j]).sum(-1) / (lengths[:, i] * lengths[:, j])
            return torch.rad2deg(torch.arccos(cos.clamp(-1.0, 1.0)))
        return lengths, torch.stack([angle(1, 2), angle(2, 0), angle(0, 1)], -1)

    def wrapped(self) -> AtomsBatch:
        """Fractional coordinates reduced into ``[0, 1)`` (padding stays 0)."""
        f = torch.remainder(self.frac, 1.0)
        f = torch.where(f >= 1.0, torch.zeros_like(f), f)  # remainder can round up to 1.0
        return dataclasses.replace(self, frac=f * self.mask[..., None])

    def compositions(self) -> list[dict[int, int]]:
        """Per structure, ``{atomic number: count}``."""
        out = []
        for s, m in zip(self.species.cpu().tolist(), self.mask.cpu().tolist(), strict=True):
            counts: dict[int, int] = {}
            for z, keep in zip(s, m, strict=True):
                if keep:
                    counts[z] = counts.get(z, 0) + 1
            out.append(counts)
        return out

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls,
        structures: Iterable[tuple[Any, Any, Any]],
        *,
        ids: Sequence[str] | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> AtomsBatch:
        """Pad ``(species [n], frac [n, 3], lattice [3, 3])`` triples into one batch.

        Raises:
            DataError: a structure with no atoms, an atomic number outside 1..118, a
                non-finite coordinate or lattice, or a degenerate lattice; the message
                names the structure's index.
        """
        items = list(structures)
        if not items:
            raise DataError("AtomsBatch.from_arrays got no structures")
        species, fracs, lattices = [], [], []
        for k, item in enumerate(items):
            try:
                z, f, lat = item
            except (TypeError, ValueError):
                raise DataError(f"structure {k}: expected a (species, frac, lattice) triple, "
                                f"got {type(item).__name__}") from None
            z = np.asarray(z, dtype=np.int64).reshape(-1)
            f, lat = _float_array(f), _float_array(lat)
            where = f"structure {k}" + (f" ({ids[k]})" if ids is not None and k < len(ids) else "")
            if z.size == 0:
                raise DataError(f"{where} has no atoms")
            if f.shape != (z.size, 3):
                raise DataError(f"{where}: frac must have shape [{z.size}, 3], got {f.shape}")
            if lat.shape != (3, 3):
                raise DataError(f"{where}: lattice must have shape [3, 3], got {lat.shape}")
            bad = z[(z < 1) | (z > MAX_Z)]
            if bad.size:
                raise DataError(f"{where}: atomic numbers must be in 1..{MAX_Z}, got {bad.tolist()}")
            if not (np.isfinite(f).all() and np.isfinite(lat).all()):
                raise DataError(f"{where}: non-finite fractional coordinates or lattice")
            if abs(np.linalg.det(lat)) < MIN_VOLUME:
                raise DataError(f"{where}: degenerate lattice (volume {abs(np.linalg.det(lat)):.3g} A^3) "
                                f"{lat.tolist()}")
            species.append(z)
            fracs.append(f)
            lattices.append(lat)
        b, n = len(items), max(len(z) for z in species)
        s = torch.zeros(b, n, dtype=torch.int64)
        fr = torch.zeros(b, n, 3, dtype=dtype)
        m = torch.zeros(b, n, dtype=torch.bool)
        for k, (z, f) in enumerate(zip(species, fracs, strict=True)):
            s[k, : len(z)] = torch.from_numpy(z)
            fr[k, : len(z)] = torch.from_numpy(f).to(dtype)
            m[k, : len(z)] = True
        lat_t = torch.from_numpy(np.stack(lattices)).to(dtype)
        return cls(s, fr, lat_t, m, tuple(ids) if ids is not None else ())

    def to_arrays(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The inverse of :meth:`from_arrays`: unpadded numpy triples, float64."""
        out = []
        for k in range(self.batch_size):
            keep = self.mask[k].cpu().numpy()
            out.append((self.species[k].cpu().numpy()[keep],
                        self.frac[k].detach().cpu().double().numpy()[keep],
                        self.lattice[k].detach().cpu().double().numpy()))
        return out

    @classmethod
    def from_ase(cls, atoms: Iterable[Any], *, ids: Sequence[str] | None = None,
                 dtype: torch.dtype = torch.float64) -> AtomsBatch:
        """From ASE ``Atoms`` (periodic, with a cell)."""
        from labkit.atoms.io import ase_to_arrays

        return cls.from_arrays([ase_to_arrays(a, index=k) for k, a in enumerate(atoms)], ids=ids,
                               dtype=dtype)

    def to_ase(self) -> list[Any]:
        """ASE ``Atoms`` with ``pbc=True``."""
        from labkit.atoms.io import arrays_to_ase

        return [arrays_to_ase(*t) for t in self.to_arrays()]

    @classmethod
    def from_structures(cls, structures: Iterable[Any], *, ids: Sequence[str] | None = None,
                        dtype: torch.dtype = torch.float64) -> AtomsBatch:
        """From pymatgen ``Structure`` objects (ordered sites only)."""
        from labkit.atoms.io import structure_to_arrays

        return cls.from_arrays([structure_to_arrays(s, index=k) for k, s in enumerate(structures)],
                               ids=ids, dtype=dtype)

    def to_structures(self) -> list[Any]:
        """pymatgen ``Structure`` objects."""
        from labkit.atoms.io import arrays_to_structure

        return [arrays_to_structure(*t) for t in self.to_arrays()]

    @classmethod
    def concat(cls, batches: Sequence[AtomsBatch]) -> AtomsBatch:
        """One batch from several, padded to the largest."""
        if not batches:
            raise ConfigError("AtomsBatch.concat needs at least one batch")
        n = max(b.max_atoms for b in batches)
        def pad(t: torch.Tensor, width: int) -> torch.Tensor:
            extra = n - width
            if extra == 0:
                return t
            shape = (t.shape[0], extra, *t.shape[2:])
            return torch.cat([t, torch.zeros(shape, dtype=t.dtype, device=t.device)], 1)
        return cls(torch.cat([pad(b.species, b.max_atoms) for b in batches]),
                   torch.cat([pad(b.frac, b.max_atoms) for b in batches]),
                   torch.cat([b.lattice for b in batches]),
                   torch.cat([pad(b.mask, b.max_atoms) for b in batches]),
                   tuple(i for b in batches for i in b.ids))

    def __repr__(self) -> str:
        n = self.n_atoms
        span = f"{int(n.min())}-{int(n.max())}" if len(n) else "0"
        return (f"AtomsBatch({self.batch_size} structures, {span} atoms, padded to {self.max_atoms}, "
                f"{self.dtype}, {self.device})")
