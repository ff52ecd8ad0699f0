"""CrystalViewer: crystals and denoising trajectories (whose cell moves) in the browser.

The state is declared once (:data:`INPUTS`, :data:`OUTPUTS`); :class:`CrystalController`
turns structures and settings into float32 buffers by calling the pure functions of
:mod:`labkit.widgets._crystal_data`; :class:`CrystalViewer` is the anywidget view (ES module
``widgets/crystal.js``, raw WebGL, no CDN) and :func:`crystal_app` the same module in a
Panel app (``labkit serve crystals``). The static plotly figures of
:mod:`labkit.widgets._crystal_plots` draw the same scenes for offline reports.

Time per frame (one 5-atom perov-5 crystal, 2 shared cores): about 1 ms for the scene (bonds
by :func:`labkit.atoms.crystal_bonds`) and 0.05-4 ms for its space group (spglib, slowest
on a symmetric crystal), so a 100-frame trajectory beside its ground truth rebuilds in
well under a second (docs/crystals.md, "Bonds in the crystal viewer").
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from labkit.atoms import CellInfo, write_structure
from labkit.errors import ConfigError
from labkit.widgets._assets import widget_module, widget_style
from labkit.widgets._crystal_data import (
    BOND_SCALE,
    CrystalTrajectory,
    as_trajectory,
    check_bond_scale,
    check_repeat,
    crystal_info,
    pack_scenes,
)
from labkit.widgets._toolkits import (
    PANEL_LAYOUT,
    AnyWidgetState,
    panel_component,
    serve_app,
    traitlet_fields,
)

__all__ = ["INPUTS", "OUTPUTS", "CrystalController", "CrystalViewer", "crystal_app",
           "crystal_panel_class", "serve_crystals"]

#: Inputs (set by the browser or by Python) and their defaults. ``frame`` is the shown
#: frame of a trajectory (the front end advances it while ``playing``, at ``fps`` frames per
#: second, wrapping round when ``loop``); a change of ``repeat``, ``images`` or
#: ``bond_scale`` rebuilds the scenes; ``bonds``, ``cell`` and ``atom_scale`` (drawn sphere
#: radius over the covalent radius) only change the drawing.
INPUTS: dict[str, Any] = {
    "frame": 0, "playing": False, "fps": 6.0, "loop": True,
    "repeat": [1, 1, 1], "images": True, "bond_scale": BOND_SCALE,
    "bonds": True, "cell": True, "atom_scale": 0.5,
}
REBUILD = ("repeat", "images", "bond_scale")
#: Outputs (set by Python only). Buffers are described by
#: :class:`~labkit.widgets._crystal_data.ScenePayload`, one entry per slot (a panel's
#: frame): ``frame_bounds`` float32 ``[slots, 2, 3]``, the box (lowest and highest x, y, z
#: in Å) holding the slot's atoms, cell corners and half-bond ends, for a view that frames
#: every frame (a denoising run's first cell is far smaller than its last); ``frame_info``
#: a list of dicts (formula, space_group, symbol, a, b, c in Å, alpha, beta, gamma in
#: degrees, volume in Å^3, and ``text``, one line for people).
OUTPUTS: dict[str, Any] = {
    "atoms": b"", "atom_offsets": b"", "bond_vertices": b"", "bond_offsets": b"",
    "cells": b"", "centres": b"", "frame_bounds": b"", "frame_info": [], "panels": [],
    "n_frames": 1, "extent": 1.0, "elements": {}, "message": "", "version": 0,
}
_TITLES = {1: ("",), 2: ("generated", "ground truth")}


class CrystalController:
    """The viewer's behaviour, independent of the widget toolkit.

    Subclasses provide ``_get(name)`` and ``_set(values)`` (several fields at once,
    ``version`` last), call :meth:`_start` once and :meth:`_changed` for each changed input.
    """

    _get: Callable[[str], Any]
    _set: Callable[[Mapping[str, Any]], None]

    def _start(self, structure: Any, compare: Any = None, *,
               titles: Sequence[str] | None = None, index: int = 0) -> None:
        self._quiet = threading.local()
        self.trajectories: list[CrystalTrajectory] = []
        self.titles: list[str] = []
        check_repeat(self._get("repeat"))
        check_bond_scale(self._get("bond_scale"))
        self.load(structure, compare, titles=titles, index=index)

    def load(self, structure: Any, compare: Any = None, *,
             titles: Sequence[str] | None = None, index: int = 0) -> None:
        """Show ``structure`` (a crystal or a trajectory, anything
        :func:`~labkit.widgets._crystal_data.as_trajectory` reads) and, when given,
        ``compare`` beside it (e.g. the ground truth). ``index`` picks the item of a batch.

        Raises:
            DataError: the structures cannot be read (the message names the bad value).
        """
        trajs = [as_trajectory(structure, index=index)]
        if compare is not None:
            trajs.append(as_trajectory(compare, index=index))
        names = list(titles) if titles is not None else list(_TITLES[len(trajs)])
        if len(names) != len(trajs):
            raise ConfigError(f"titles must name each of the {len(trajs)} panel(s), got "
                              f"{names!r}")
        self.trajectories, self.titles = trajs, names
        self._rebuild()
        frame = min(self._get("frame"), self._get("n_frames") - 1)
        if frame != self._get("frame"):
            self._quiet_set({"frame": frame})

    @property
    def n_frames(self) -> int:
        return max(t.n_frames for t in self.trajectories)

    # ---- inputs -------------------------------------------------------------------------
    def _quiet_set(self, values: Mapping[str, Any]) -> None:
        self._quiet.on = True
        try:
            self._set(values)
        finally:
            self._quiet.on = False

    def _changed(self, name: str, old: Any, new: Any) -> None:
        if getattr(self._quiet, "on", False):
            return
        if name in REBUILD:
            try:
                self._rebuild()
            except ConfigError as exc:
                self._quiet_set({name: old})
                self._set({"message": str(exc)})
        elif name == "frame" and not 0 <= new < self.n_frames:
            # Panel has no per-field validator: clamp what a front end sent.
            self._quiet_set({"frame": max(0, min(int(new), self.n_frames - 1))})

    def _rebuild(self) -> None:
        repeat = list(check_repeat(self._get("repeat")))
        p = pack_scenes(self.trajectories, self.titles, repeat=repeat,
                        images=bool(self._get("images")),
                        bond_scale=check_bond_scale(self._get("bond_scale")))
        self.payload = p
        self._set({
            "atoms": p.atoms.tobytes(), "atom_offsets": p.atom_offsets.tobytes(),
            "bond_vertices": p.bonds.tobytes(), "bond_offsets": p.bond_offsets.tobytes(),
            "cells": p.cells.tobytes(), "centres": p.centres.tobytes(),
            "frame_bounds": p.bounds.tobytes(), "frame_info": p.info, "panels": p.panels,
            "n_frames": p.n_frames, "extent": p.extent, "elements": p.elements,
            "message": "", "version": self._get("version") + 1,
        })

    # ---- what is shown ----------------------------------------------------------------------
    def crystals(self, frame: int | None = None) -> list[Any]:
        """The crystal of each panel at ``frame`` (default: the current frame)."""
        f = self._get("frame") if frame is None else frame
        return [t.frame(min(f, t.n_frames - 1)) for t in self.trajectories]

    def cell_info(self, frame: int | None = None) -> list[CellInfo]:
        """Lattice parameters, volume and space group (spglib) of each panel's crystal at
        ``frame`` (default: the current frame); ``frame_info`` holds the same for the front
        end."""
        return [crystal_info(c) for c in self.crystals(frame)]

    def export(self, path: str | Path, *, panel: int = 0, frame: int | None = None) -> Path:
        """Write the crystal shown in ``panel`` at ``frame`` (default: the current frame) to
        ``path``: CIF (``.cif``) or VASP POSCAR (``.vasp``, ``.poscar``, or a name holding
        ``POSCAR`` or ``CONTCAR``), by :func:`labkit.atoms.write_structure` (pymatgen's
        writers). A PNG of the view is saved by the browser.

        Returns:
            The path written.

        Raises:
            ConfigError: an unknown file extension (named in the message), or ``panel`` or
                ``frame`` out of range.
        """
        n = len(self.trajectories)
        if isinstance(panel, bool) or not isinstance(panel, int) or not 0 <= panel < n:
            raise ConfigError(f"panel must be an int in [0, {n - 1}] ({n} panel(s)), got "
                              f"{panel!r}")
        if frame is not None and (isinstance(frame, bool) or not isinstance(frame, int)
                                  or not 0 <= frame < self.n_frames):
            raise ConfigError(f"frame must be an int in [0, {self.n_frames - 1}] or None, got "
                              f"{frame!r}")
        c = self.crystals(frame)[panel]
        return write_structure((c.species, c.frac, c.lattice), path)

    def figure(self, *, animate: bool = False) -> Any:
        """The current view as a static plotly figure (for papermill and HTML reports):
        the current frame, beside its comparison if any; with ``animate`` the whole first
        trajectory as plotly frames (the cell moves too)."""
        from labkit.widgets._crystal_plots import (
            crystal_figure,
            crystal_grid_figure,
            crystal_trajectory_figure,
        )

        options = {"repeat": tuple(self._get("repeat")), "images": bool(self._get("images")),
                   "bonds": bool(self._get("bonds")), "cell": bool(self._get("cell")),
                   "bond_scale": float(self._get("bond_scale"))}
        if animate:
            return crystal_trajectory_figure(self.trajectories[0], title=self.titles[0],
                                             **options)
        shown = self.crystals()
        if len(shown) == 1:
            return crystal_figure(shown[0], title=self.titles[0], **options)
        return crystal_grid_figure(shown, captions=self.titles, cols=len(shown), **options)


class CrystalViewer(AnyWidgetState, anywidget.AnyWidget, CrystalController):
    """Crystals and denoising trajectories in JupyterLab, Notebook and VS Code (no CDN).

    Atoms are shaded spheres coloured by element (Jmol colours) and sized by covalent
    radius; bonds join atoms closer than VESTA's cut-off for their two elements (times
    ``bond_scale``; :func:`labkit.atoms.crystal_bonds`: cation-anion and covalent bonds, no
    metal-metal ones), across the cell boundary too; the unit cell is outlined, and atoms
    on faces, edges and corners are repeated on the opposite ones. Drag to rotate, scroll
    to zoom, hover an atom for its element, index and fractional coordinates. A trajectory
    (the lattice moves during denoising) gets a frame slider and play/pause; ``frame`` is
    synced, so Python sees it move and can set it. ``compare`` shows a second structure
    (e.g. the ground truth) beside the first, with the same camera. ``frame_info`` holds
    each frame's space group and lattice parameters, ``frame_bounds`` the box that frames
    it; :meth:`export` writes the shown crystal as CIF or POSCAR.

    Example::

        from labkit.atoms.io import sample_crystals
        from labkit.widgets import CrystalViewer
        truth = sample_crystals("perov_5")[0]
        viewer = CrystalViewer(result, compare=truth, index=0)  # result: a sampler's
        viewer            # in a notebook cell
        viewer.frame = 0  # the first (noisiest) frame
        viewer.figure()   # the same view as a static plotly figure
        viewer.cell_info()[0].summary()  # 'P1 (1) · a=... ': space group, lattice
        viewer.export("prediction.cif")  # or "POSCAR": the shown frame of panel 0

    Args:
        structure: a crystal or trajectory: pymatgen ``Structure``, ASE ``Atoms``,
            ``(species, frac, lattice)``, a batch (``species``/``frac``/``lattice``/``mask``
            attributes; item ``index``), a sampler result (``frac [T, B, N, 3]``,
            ``lattice [T, B, 3, 3]``) or a list of frames.
        compare: a second structure or trajectory shown beside it.
        titles: one caption per panel (default ``"generated"``, ``"ground truth"``).
        index: the item of a batch to show.
        **state: the state fields of :data:`INPUTS`.
    """

    _esm = widget_module("crystal")
    _css = widget_style("crystal")

    locals().update(traitlet_fields({**INPUTS, **OUTPUTS}))

    def __init__(self, structure: Any, compare: Any = None, *,
                 titles: Sequence[str] | None = None, index: int = 0, **state: Any) -> None:
        unknown = sorted(set(state) - set(INPUTS))
        if unknown:
            raise ConfigError(f"unknown CrystalViewer option(s) {unknown}; options: "
                              f"{sorted(INPUTS)} and compare, titles, index")
        frame = state.pop("frame", 0)
        super().__init__(**state)
        self._start(structure, compare, titles=titles, index=index)
        self.frame = frame
        self.observe(lambda change: self._changed(change["name"], change["old"],
                                                  change["new"]), names=list(INPUTS))

    @traitlets.validate("frame")
    def _check_frame(self, proposal: Any) -> int:
        n = self.n_frames if getattr(self, "trajectories", None) else 1
        if not 0 <= proposal["value"] < n:
            raise traitlets.TraitError(f"frame must be in [0, {n - 1}], got "
                                       f"{proposal['value']!r}")
        return proposal["value"]

    @traitlets.validate("fps")
    def _check_fps(self, proposal: Any) -> float:
        if not 0.1 <= proposal["value"] <= 60:
            raise traitlets.TraitError(f"fps must be in [0.1, 60], got {proposal['value']!r}")
        return proposal["value"]

    @traitlets.validate("atom_scale")
    def _check_atom_scale(self, proposal: Any) -> float:
        if not 0.05 <= proposal["value"] <= 2:
            raise traitlets.TraitError(f"atom_scale must be in [0.05, 2], got "
                                       f"{proposal['value']!r}")
        return proposal["value"]


# ---- Panel -------------------------------------------------------------------------------------

@functools.cache
def crystal_panel_class() -> type:
    """The Panel component class (built on first use, so importing labkit never imports
    Panel)."""
    import panel as pn

    def __init__(self: Any, structure: Any = None, compare: Any = None, *,
                 titles: Sequence[str] | None = None, index: int = 0, **params: Any) -> None:
        unknown = sorted(set(params) - set(INPUTS) - PANEL_LAYOUT)
        if unknown:
            raise ConfigError(f"unknown CrystalPanel option(s) {unknown}; options: "
                              f"{sorted(INPUTS)} and compare, titles, index")
        if structure is None:
            raise ConfigError("CrystalPanel needs a structure to show")
        pn.custom.AnyWidgetComponent.__init__(self, **params)
        self._start(structure, compare, titles=titles, index=index)
        self.param.watch(self._on_events, list(INPUTS))

    return panel_component(
        "CrystalPanel", doc="CrystalViewer as a Panel component (same ES module and "
        "behaviour).", module=__name__, asset="crystal", controller=CrystalController,
        defaults={**INPUTS, **OUTPUTS}, init=__init__)


def crystal_app(structure: Any = None, compare: Any = None, *, dataset: str = "perov_5",
                index: int = 0, **options: Any) -> Any:
    """A Panel layout holding one crystal viewer; without ``structure``, crystal ``index``
    of labkit's sample of ``dataset`` (``"perov_5"`` or ``"carbon_24"``)."""
    import panel as pn

    if structure is None:
        from labkit.atoms.io import sample_crystals

        samples = sample_crystals(dataset)
        if not 0 <= index < len(samples):
            raise ConfigError(f"index must be in [0, {len(samples) - 1}], got {index!r}")
        structure, index = samples[index], 0
    viewer = crystal_panel_class()(structure, compare, index=index,
                                   sizing_mode="stretch_width", **options)
    header = pn.pane.Markdown(
        "## labkit · crystals\nDrag to rotate, scroll to zoom, hover an atom for its element, "
        "index and fractional coordinates.")
    return pn.Column(header, viewer, sizing_mode="stretch_width")


def serve_crystals(*, port: int = 5006, address: str = "127.0.0.1", show: bool = False,
                   **options: Any) -> None:
    """Serve :func:`crystal_app` (one viewer per browser session) until interrupted."""
    serve_app("crystals", lambda: crystal_app(**options), port=port, address=address,
              show=show, title="labkit crystals")
