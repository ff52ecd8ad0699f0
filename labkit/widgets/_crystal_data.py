"""What the crystal viewer shows, computed by pure functions (no UI library here).

A crystal is ``species`` (atomic numbers ``[N]``), ``frac`` (fractional coordinates
``[N, 3]``) and ``lattice`` (``[3, 3]``, rows are the lattice vectors in Å), so that the
cartesian positions are ``frac @ lattice``. A trajectory has ``frac [T, N, 3]`` and
``lattice [T, 3, 3]``: the cell moves too (a denoising run).

:func:`as_crystal` and :func:`as_trajectory` adapt what users hold (numpy or torch arrays,
pymatgen ``Structure``, ASE ``Atoms``, batches with ``species``/``frac``/``lattice``/``mask``
and sampler results with a leading time axis) without importing pymatgen or ASE.
:func:`crystal_scene` turns one crystal into what is drawn (periodic images, bonds by
VESTA's element-pair cut-offs, cell edges) and :func:`crystal_info` gives its lattice
parameters and space group; the :class:`~labkit.widgets.CrystalViewer`, its Panel app
and the static plotly figures all call them, so a report shows what the live widget
shows.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from labkit.atoms import CellInfo, cell_info, crystal_bonds
from labkit.errors import ConfigError

# The data model and adaptors (_crystal_model) and the element table (_elements) live in
# their own modules; their names stay importable from here.
from labkit.widgets._crystal_model import (
    Crystal,
    CrystalTrajectory,
    as_crystal,
    as_trajectory,
)
from labkit.widgets._elements import COVALENT_RADII, ELEMENT_COLORS, ELEMENTS, element_symbol
from labkit.widgets._elements import MAX_Z as MAX_Z
from labkit.widgets._elements import UNTABULATED_RADIUS as UNTABULATED_RADIUS

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
    "crystal_info",
    "crystal_scene",
    "element_symbol",
]

#: Factor on VESTA's element-pair bond cut-offs (:func:`labkit.atoms.bond_cutoffs`): 1 draws
#: the bonds VESTA draws by default (cation-anion and covalent pairs, no metal-metal).
BOND_SCALE = 1.0
#: Largest ``bond_scale`` accepted (twice VESTA's cut-offs already joins second neighbours).
MAX_BOND_SCALE = 2.0
#: A frame with less volume per atom than this is drawn without bonds, Å^3: under half the
#: volume per atom of diamond (5.67 Å^3), the densest crystal at ambient pressure, so only
#: the collapsed, near-singular cells of a denoising run's first frames, where every atom
#: would be bonded to hundreds of images of the others.
MIN_VOLUME_PER_ATOM = 2.0
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


# ---- what is drawn ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class CrystalScene:
    """One crystal as drawn: the shown atoms (periodic images included), bonds and cell.

    Attributes:
        cart: ``[M, 3]`` cartesian positions of the shown atoms, Å.
        frac: ``[M, 3]`` their fractional coordinates in the unit cell's basis (an image on
            the far face has a coordinate equal to the repeat, e.g. ``1.0``).
        source: ``[M]`` index of the atom of the crystal each shown atom is an image of.
        species: ``[M]`` atomic numbers; ``radii`` ``[M]`` covalent radii (Å, the drawn
            sphere size); ``colors`` ``[M, 3]`` RGB in [0, 1].
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

    @property
    def bounds(self) -> np.ndarray:
        """``[2, 3]`` the box (lowest, highest x y z, Å) holding everything drawn: the atoms'
        centres, the cell's corners and the ends of the half-bonds. A view that frames this
        box frames the structure, whatever the size of the cell (a denoising run's first
        cell can be a hundred times smaller than its last)."""
        ends = (self.cart[self.dangling] + self.partners) / 2
        points = np.concatenate([self.cart, self.cell.reshape(-1, 3), ends])
        return np.stack([points.min(0), points.max(0)])


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
            or not 0.0 <= float(scale) <= MAX_BOND_SCALE:
        raise ConfigError(f"bond_scale must be a number in [0, {MAX_BOND_SCALE:g}] (times "
                          f"VESTA's bond cut-off of each pair of elements), got {scale!r}")
    return float(scale)


def cell_edges(lattice: np.ndarray) -> np.ndarray:
    """The 12 edges of the cell spanned by the rows of ``lattice``, ``[12, 2, 3]`` in Å."""
    corners = _CORNERS @ np.asarray(lattice, dtype=np.float64)
    return np.stack([[corners[i], corners[j]] for i, j in _EDGES])


def wrap_frac(frac: np.ndarray, tol: float = IMAGE_TOL) -> np.ndarray:
    """Fractional coordinates wrapped into ``[-tol, 1 - tol)``: ``0.9999`` is on the face at
    0 (and shown on both faces)."""
    wrapped = np.mod(frac, 1.0)
    wrapped[wrapped > 1.0 - tol] -= 1.0
    return wrapped


def shown_images(frac: np.ndarray, repeat: tuple[int, int, int] = (1, 1, 1), *,
                 images: bool = True, tol: float = IMAGE_TOL
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fractional positions of the atoms shown in ``repeat`` cells, their sources, and the
    images just outside (a halo one cell thick).

    Coordinates are wrapped by :func:`wrap_frac`; each atom appears once per repeated cell,
    and with ``images`` an atom within ``tol`` of a cell face also on the opposite face (so
    a corner atom appears at all 8 corners, an edge atom on 4 edges, a face atom on 2
    faces), as crystal viewers draw them.

    Returns:
        ``(frac [M, 3], source [M], halo_frac [H, 3], halo_source [H])``, by source atom.
    """
    wrapped = wrap_frac(frac, tol)
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


#: Cell offsets of a shown atom or bond partner are packed into one integer key per
#: (atom, cell) with this many values per axis, centred on 0.
_KEY_SPAN = 64


def _keys(atom: np.ndarray, cell: np.ndarray) -> np.ndarray:
    c = cell + _KEY_SPAN // 2
    return ((atom * _KEY_SPAN + c[:, 0]) * _KEY_SPAN + c[:, 1]) * _KEY_SPAN + c[:, 2]


def _scene_bonds(c: Crystal, wrapped: np.ndarray, src: np.ndarray, cells: np.ndarray,
                 reps: tuple[int, int, int], scale: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The crystal's bonds (:func:`labkit.atoms.crystal_bonds`) between the shown atoms
    (``src`` [M] in cells ``cells`` [M, 3] of the ``wrapped`` coordinates), and the
    half-bonds to partners that are not shown but lie in the cells next to the repeated
    ones (in a cell thinner than a bond, a partner further out is not drawn).

    Returns:
        ``(pairs [K, 2], dangling [D], partner_frac [D, 3])``.
    """
    graph = crystal_bonds(c.species, wrapped, c.lattice, scale=scale)
    # both directions: atom `frm` bonds to atom `to` in the cell `image` away from its own
    frm = np.concatenate([graph.i, graph.j])
    to = np.concatenate([graph.j, graph.i])
    image = np.concatenate([graph.image, -graph.image])
    # every shown copy of `frm`: shown atoms sorted by source, repeated per bond
    order = np.argsort(src, kind="stable")
    counts = np.bincount(src, minlength=c.n_atoms)
    starts = np.cumsum(counts) - counts
    per_bond = counts[frm]
    bond = np.repeat(np.arange(len(frm)), per_bond)
    within = np.arange(len(bond)) - np.repeat(np.cumsum(per_bond) - per_bond, per_bond)
    atom = order[starts[frm[bond]] + within]  # a shown atom, index into the scene
    cell = cells[atom] + image[bond]  # where its partner is
    partner = to[bond]
    near = ((cell >= -1) & (cell <= np.asarray(reps))).all(1)
    atom, cell, partner = atom[near], cell[near], partner[near]
    shown_keys = _keys(src, cells)
    key_order = np.argsort(shown_keys)
    wanted = _keys(partner, cell)
    pos = np.minimum(np.searchsorted(shown_keys, wanted, sorter=key_order), len(src) - 1)
    hit = shown_keys[key_order[pos]] == wanted
    other = key_order[pos]
    inner = hit & (atom < other)  # each bond between shown atoms is met from both ends
    pairs = np.stack([atom[inner], other[inner]], axis=1)
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
    outer = np.nonzero(~hit)[0]
    outer = outer[np.lexsort((partner[outer], atom[outer]))]
    return pairs, atom[outer], wrapped[partner[outer]] + cell[outer]


def crystal_scene(crystal: Any, *, repeat: Sequence[int] = (1, 1, 1), images: bool = True,
                  bonds: bool = True, bond_scale: float = BOND_SCALE) -> CrystalScene:
    """What to draw for ``crystal`` (anything :func:`as_crystal` reads).

    Args:
        repeat: cells along ``a``, ``b``, ``c`` (each in ``[1, 6]``).
        images: also show atoms on faces, edges and corners on the opposite ones.
        bonds: find bonds with :func:`labkit.atoms.crystal_bonds`: a pair closer than
            VESTA's cut-off for its two elements (times ``bond_scale``), so cation-anion
            and covalent bonds, and no metal-metal ones. Periodic: a bond to an image that
            is not shown (across the boundary) is kept as a half-bond
            (``dangling``/``partners``). A cell with less than :data:`MIN_VOLUME_PER_ATOM`
            per atom (a collapsed early denoising frame) gets no bonds.
        bond_scale: factor on the cut-offs, in ``[0, 2]``.

    Raises:
        ConfigError: bad ``repeat`` or ``bond_scale``, or more than 20,000 atoms to show.
    """
    c = as_crystal(crystal)
    reps = check_repeat(repeat)
    scale = check_bond_scale(bond_scale)
    frac, src, _, _ = shown_images(c.frac, reps, images=images)
    if len(src) > MAX_SHOWN_ATOMS:
        raise ConfigError(f"{len(src)} atoms to show with repeat={list(reps)}; at most "
                          f"{MAX_SHOWN_ATOMS}: use a smaller repeat")
    cart = frac @ c.lattice
    species = c.species[src]
    pairs = np.zeros((0, 2), dtype=np.int64)
    dangling, partners = np.zeros(0, dtype=np.int64), np.zeros((0, 3))
    volume = abs(float(np.linalg.det(c.lattice)))
    if bonds and len(src) > 0 and scale > 0 and volume >= MIN_VOLUME_PER_ATOM * c.n_atoms:
        wrapped = wrap_frac(c.frac)
        cells = np.rint(frac - wrapped[src]).astype(np.int64)
        pairs, dangling, partner_frac = _scene_bonds(c, wrapped, src, cells, reps, scale)
        partners = partner_frac @ c.lattice
    centre = (np.asarray(reps, dtype=np.float64) / 2) @ c.lattice
    return CrystalScene(cart=cart, frac=frac, source=src, species=species,
                        radii=COVALENT_RADII[species], colors=ELEMENT_COLORS[species],
                        bonds=pairs, dangling=dangling, partners=partners,
                        cell=cell_edges(c.lattice), centre=centre, crystal=c)


def crystal_info(crystal: Any) -> CellInfo:
    """Lattice parameters, volume and space group (spglib, :func:`labkit.atoms.cell_info`)
    of ``crystal`` (anything :func:`as_crystal` reads)."""
    c = as_crystal(crystal)
    return cell_info(c.species, c.frac, c.lattice)


# ---- packing for the browser -------------------------------------------------------------------

#: Floats per shown atom in the ``atoms`` buffer: x y z (Å), fa fb fc (fractional), r g b,
#: covalent radius (Å), atomic number, index of the source atom.
ATOM_STRIDE = 12
#: Floats per vertex of the ``bonds`` buffer (x y z r g b); a bond is two half-bonds, each
#: coloured by its own atom, so four vertices.
BOND_STRIDE = 6


def info_record(info: CellInfo, formula: str) -> dict[str, Any]:
    """One slot's entry of :attr:`ScenePayload.info`: plain JSON numbers and strings."""
    return {"formula": formula, "space_group": info.space_group, "symbol": info.symbol,
            "a": round(info.a, 4), "b": round(info.b, 4), "c": round(info.c, 4),
            "alpha": round(info.alpha, 3), "beta": round(info.beta, 3),
            "gamma": round(info.gamma, 3), "volume": round(info.volume, 3),
            "text": f"{formula} · {info.summary()}"}


@dataclasses.dataclass(frozen=True)
class ScenePayload:
    """Frames of one or more panels packed as float32/int32 buffers for the front end.

    Panel ``p`` at frame ``f`` is slot ``panels[p]["slot"] + min(f, panels[p]["frames"] - 1)``
    (a single structure beside a trajectory stays put). Slot ``s`` owns atoms
    ``atom_offsets[s]:atom_offsets[s + 1]`` (rows of :data:`ATOM_STRIDE` floats), bond
    vertices ``bond_offsets[s]:bond_offsets[s + 1]`` (rows of :data:`BOND_STRIDE`: two
    half-bonds per bond between shown atoms, then one per dangling bond), the 24 cell-edge
    vertices ``cells[s]``, the view centre ``centres[s]`` (the centre of the repeated
    cell), the box ``bounds[s]`` = ``[[xmin, ymin, zmin], [xmax, ymax, zmax]]`` (Å) holding
    the slot's atoms, cell corners and half-bond ends (:attr:`CrystalScene.bounds`: frame
    it and the frame fills the view), and ``info[s]``, the slot's crystal described for
    people (:func:`info_record`: formula, space group, lattice parameters, ``text``).
    ``extent`` is the largest diagonal of any slot's box, Å.
    """

    atoms: np.ndarray
    atom_offsets: np.ndarray
    bonds: np.ndarray
    bond_offsets: np.ndarray
    cells: np.ndarray
    centres: np.ndarray
    bounds: np.ndarray
    info: list[dict[str, Any]]
    panels: list[dict[str, Any]]
    n_frames: int
    extent: float
    elements: dict[str, str]


def pack_scenes(trajectories: Sequence[CrystalTrajectory], titles: Sequence[str], *,
                repeat: Sequence[int] = (1, 1, 1), images: bool = True, bonds: bool = True,
                bond_scale: float = BOND_SCALE) -> ScenePayload:
    """Every frame of every panel through :func:`crystal_scene` and :func:`crystal_info`,
    packed for the browser."""
    atoms, bond_rows, cells, centres, bounds, info = [], [], [], [], [], []
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
            box = sc.bounds
            bounds.append(box)
            info.append(info_record(crystal_info(sc.crystal), sc.crystal.formula))
            extent = max(extent, float(np.linalg.norm(box[1] - box[0])))
            seen.update(int(z) for z in np.unique(sc.species))
    return ScenePayload(
        atoms=np.ascontiguousarray(np.concatenate(atoms), dtype=np.float32),
        atom_offsets=np.asarray(atom_offsets, dtype=np.int32),
        bonds=np.ascontiguousarray(np.concatenate(bond_rows), dtype=np.float32),
        bond_offsets=np.asarray(bond_offsets, dtype=np.int32),
        cells=np.ascontiguousarray(np.stack(cells), dtype=np.float32),
        centres=np.ascontiguousarray(np.stack(centres), dtype=np.float32),
        bounds=np.ascontiguousarray(np.stack(bounds), dtype=np.float32),
        info=info, panels=panels, n_frames=max(p["frames"] for p in panels), extent=extent,
        elements={str(z): ELEMENTS[z] for z in sorted(seen)})
