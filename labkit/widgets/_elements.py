"""The element table of the crystal viewer: chemical symbols, covalent radii and colours by
atomic number, Z = 1..118.

Index 0 of every table is a placeholder (no element 0), so a table is indexed by atomic
number directly: ``COVALENT_RADII[species]``, ``ELEMENT_COLORS[species]``.
"""

from __future__ import annotations

import numpy as np

from labkit.errors import DataError

__all__ = [
    "COVALENT_RADII",
    "ELEMENTS",
    "ELEMENT_COLORS",
    "MAX_Z",
    "UNTABULATED_RADIUS",
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
#: Jmol colours as RGB in [0, 1] by atomic number (index 0 unused), ``[119, 3]``.
ELEMENT_COLORS = np.concatenate([np.full((1, 3), np.nan), np.array(
    [[int(c[i:i + 2], 16) / 255 for i in (0, 2, 4)] for c in _ROWS[:, 2]])])
MAX_Z = len(ELEMENTS) - 1


def element_symbol(z: int) -> str:
    """The chemical symbol of atomic number ``z`` (1..118); :class:`DataError` otherwise."""
    if not 1 <= int(z) <= MAX_Z:
        raise DataError(f"unknown element number {z!r}: expected an atomic number in "
                        f"[1, {MAX_Z}]")
    return ELEMENTS[int(z)]
