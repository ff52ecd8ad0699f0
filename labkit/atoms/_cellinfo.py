"""What a crystallographer reads off a cell: lattice parameters, volume and space group.

The space group comes from spglib (Togo, Shinohara & Tanaka, "Spglib: a software library
for crystal symmetry search", Sci. Technol. Adv. Mater. Meth. 4, 2384822 (2024)) at the
tolerance labkit's metrics use (:data:`SYMPREC`); spglib is imported inside the functions.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from labkit.atoms._bonds import structure_arrays
from labkit.core.config import check_positive
from labkit.errors import DataError

__all__ = ["SYMPREC", "CellInfo", "cell_info"]

#: spglib's symmetry tolerance, Å (pymatgen's ``SpacegroupAnalyzer`` default and the usual
#: choice for generated crystals).
SYMPREC = 0.1


def spglib_dataset(lattice: Any, frac: Any, numbers: Any, symprec: float) -> Any:
    """spglib's symmetry dataset of a cell (lattice ``[3, 3]`` as rows, fractional
    coordinates ``[N, 3]``, atomic numbers ``[N]``), or ``None`` where spglib finds none."""
    import warnings

    import spglib

    cell = (np.asarray(lattice, dtype=np.float64).tolist(),
            np.asarray(frac, dtype=np.float64).tolist(), [int(z) for z in numbers])
    try:
        with warnings.catch_warnings():  # spglib 2.5's notice on its error handling
            warnings.simplefilter("ignore", DeprecationWarning)
            return spglib.get_symmetry_dataset(cell, symprec=symprec)
    except Exception:  # newer spglib raises where older versions returned None
        return None


@dataclasses.dataclass(frozen=True)
class CellInfo:
    """Lattice parameters and space group of one crystal.

    Attributes:
        a, b, c: lengths of the lattice vectors, Å.
        alpha, beta, gamma: the angles between b and c, a and c, a and b, degrees.
        volume: cell volume, Å^3.
        space_group: international space-group number (1-230); 0 where spglib finds no
            symmetry dataset.
        symbol: its Hermann-Mauguin symbol (e.g. ``"Pm-3m"``); ``""`` with number 0.
        symprec: spglib's tolerance used, Å.
    """

    a: float
    b: float
    c: float
    alpha: float
    beta: float
    gamma: float
    volume: float
    space_group: int
    symbol: str
    symprec: float

    def as_dict(self) -> dict[str, float | int | str]:
        """Every field, plain numbers and strings."""
        return dataclasses.asdict(self)

    @property
    def space_group_text(self) -> str:
        """``"Pm-3m (221)"``, or ``"no space group"``."""
        return f"{self.symbol} ({self.space_group})" if self.space_group else "no space group"

    @property
    def lattice_text(self) -> str:
        """``"a=3.91 b=3.91 c=3.91 Å, α=90.0° β=90.0° γ=90.0°, V=59.5 Å³"``."""
        return (f"a={self.a:.2f} b={self.b:.2f} c={self.c:.2f} Å, α={self.alpha:.1f}° "
                f"β={self.beta:.1f}° γ={self.gamma:.1f}°, V={self.volume:.1f} Å³")

    def summary(self) -> str:
        """One line for people: the space group, then the lattice parameters."""
        return f"{self.space_group_text} · {self.lattice_text}"


def lattice_parameters(lattice: np.ndarray) -> tuple[float, float, float, float, float, float]:
    """``(a, b, c, alpha, beta, gamma)`` of lattice vectors given as rows, Å and degrees."""
    lat = np.asarray(lattice, dtype=np.float64)
    lengths = np.linalg.norm(lat, axis=1)

    def angle(u: int, v: int) -> float:
        cos = float(lat[u] @ lat[v]) / float(lengths[u] * lengths[v])
        return math.degrees(math.acos(min(1.0, max(-1.0, cos))))

    a, b, c = (float(v) for v in lengths)
    return a, b, c, angle(1, 2), angle(0, 2), angle(0, 1)


def cell_info(species: np.ndarray, frac: np.ndarray, lattice: np.ndarray, *,
              symprec: float = SYMPREC) -> CellInfo:
    """Lattice parameters, volume and space group (spglib) of a crystal.

    Args:
        species: ``[N]`` atomic numbers.
        frac: ``[N, 3]`` fractional coordinates.
        lattice: ``[3, 3]`` lattice vectors as rows, Å.
        symprec: spglib's distance tolerance, Å.

    Returns:
        A :class:`CellInfo`.

    Raises:
        DataError: shapes that do not fit, or a singular cell.
        ConfigError: ``symprec`` not a positive number.

    Example::

        >>> import numpy as np
        >>> from labkit.atoms import cell_info
        >>> frac = [[0.5, 0.5, 0.5], [0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]]
        >>> cell_info([38, 22, 8, 8, 8], frac, 3.905 * np.eye(3)).summary()
        'Pm-3m (221) · a=3.90 b=3.90 c=3.90 Å, α=90.0° β=90.0° γ=90.0°, V=59.5 Å³'
    """
    check_positive("symprec", symprec)
    z, x, lat = structure_arrays(species, frac, lattice)
    volume = abs(float(np.linalg.det(lat)))
    if volume < 1e-9:
        raise DataError(f"the cell is singular (volume {volume:.3g} Å^3)")
    data = spglib_dataset(lat, x, z, symprec) if z.size else None
    number = 0 if data is None else int(data.number)
    symbol = "" if data is None else str(data.international)
    return CellInfo(*lattice_parameters(lat), volume=volume, space_group=number,
                    symbol=symbol, symprec=float(symprec))
