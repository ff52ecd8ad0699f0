"""The attractor viewer's ensemble as a stream: trajectories continued from where they are.

:class:`Ensemble` holds ``n_ic`` trajectories of a catalogue system, their present states
and the last ``capacity`` samples of each (a ring, oldest overwritten first). A parameter
change does not start again at ``t = 0``: :meth:`Ensemble.retune` binds the new
parameters and the trajectories go on from their present states, as in
DynamicalSystems.jl's interactive apps, so the picture bends instead of being redrawn.
:meth:`Ensemble.advance` integrates the next few samples of all trajectories at once and
returns only them, as a :class:`Segment`; the browser appends each segment to its own copy
of the ring. So what one change costs is one short integration from the present states and
one message of new samples, whatever the history.

A *version* is what one change shows: ``capacity - 1`` samples after a parameter change
(the ring then holds the present state and the new stretch), a few more samples after a
step (:meth:`Ensemble.extend`), or a fresh ring of ``capacity`` samples after a restart
(new initial conditions), a rewind (back to the initial states), seeded trajectories
(:meth:`Ensemble.add`) or a change of ``periods``, ``samples``, ``color_by`` or the drawn
``variables`` (which change what a sample is, so old samples cannot stay).

Besides the three drawn variables, the ring keeps the whole states of up to
:data:`SECTION_ROWS` trajectories, from which :meth:`Ensemble.section` computes the
Poincare section of what is drawn (:func:`labkit.dynamics.poincare_section`) and
:func:`section_seed` turns a click on it into a whole state.
Versions are streamed in segments, short first (:data:`FIRST_SEGMENT`) so the first
picture after a change arrives fast.

The colour channel holds the raw colour value (time since the version began, speed,
expansion rate); the browser maps it through ``color_range``, which grows as segments
arrive, so no sample already sent needs sending again.

No UI library here: the widget (:mod:`labkit.widgets._attractor`) decides when to call
what and how segments travel.
"""

from __future__ import annotations

import dataclasses
import json
import math
import struct
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from labkit.core.device import resolve_device
from labkit.core.integrate import rk4
from labkit.core.rng import make_generator
from labkit.dynamics import System, poincare_section
from labkit.errors import ConfigError
from labkit.widgets._attractor_data import (
    COLOR_MODES,
    MAX_BUFFER_FLOATS,
    MAX_IC,
    MAX_SAMPLES,
    NO_VARIABLE,
    AttractorData,
    _check_float,
    _check_int,
    _color_values,
    _dtype_for,
    _starting_states,
    as_system,
    check_variables,
    default_variables,
    drawn_names,
    integration_step,
)

__all__ = [
    "FIRST_SEGMENT",
    "SEGMENT_BYTES",
    "Ensemble",
    "SectionData",
    "SectionInput",
    "Segment",
    "compute_section",
    "parse_segment",
    "section_axes",
    "section_seed",
    "segment_lengths",
]

#: Samples per trajectory in the first segment after a change: few, so that the first
#: picture of the new parameters costs little (fewer where :data:`SEGMENT_BYTES` says so).
FIRST_SEGMENT = 8
#: Most payload bytes of one segment (4 samples of 4,096 trajectories, 16 of 1,024).
#: Segments double in length up to this. It keeps each message short, so a newer change
#: never queues behind a large one: a browser that draws in software took ~1 s to receive
#: a 1 MB message while animating 4,096 comets (its main thread reads the websocket
#: between frames).
SEGMENT_BYTES = 1 << 18
#: float32 values per sample on the wire: x, y, z and the raw colour value.
SAMPLE_FLOATS = 4
#: Percentiles of the colour values mapped to the ends of the colour ramp (speed and
#: expansion): the few extreme samples are clipped instead of squeezing the rest.
COLOR_PERCENTILES = (2.0, 98.0)
#: Whole states (all variables, not only the three drawn) are kept for the Poincare
#: section of at most this many trajectories (the seeded ones first: 16 clicks' worth), and
#: at most this many float32 values of them (16 MB). 128 trajectories of 10 periods give
#: ~1,300 crossings of a Lorenz section, which take 10-30 ms to find (on a thread of the
#: widget's own, while the picture's thread waits).
SECTION_ROWS = 128
SECTION_FLOATS = 4_000_000
#: Most points of a section sent to the browser (the first trajectories' are thinned out
#: beyond it; seeded trajectories' points are kept).
MAX_SECTION_POINTS = 20_000


@dataclasses.dataclass(frozen=True)
class Segment:
    """New samples of every trajectory, and where they go.

    Attributes:
        header: JSON-safe description: ``seq`` (set by the sender), ``version``, ``reset``
            (start a fresh ring of ``capacity`` samples of ``n_ic`` trajectories of
            ``kind``), ``start`` (index of the first sample since the ring was reset) and
            ``count``, ``epoch_start`` (index of the first sample of this version),
            ``complete`` (the version has all its samples), ``t0`` (time of sample
            ``start``) and ``gap`` (time between samples), ``range`` (colour values
            mapped to the ends of the colour ramp), ``bounds`` (lower and upper corner of
            the ring's positions), ``diverged`` (indices of diverged trajectories, present
            when the set changed), ``snapshot`` (the whole ring, for a view that missed
            segments).
        payload: ``[count, n_ic, 4]`` float32: x, y, z, raw colour value (time-major, so
            one segment is one contiguous block of the browser's ring).
    """

    header: dict[str, Any]
    payload: np.ndarray

    def to_bytes(self, seq: int) -> bytes:
        """The wire format: a little-endian uint32 header length, the JSON header (padded
        with spaces to a multiple of 4 bytes, so the payload is float-aligned), the
        payload."""
        head = json.dumps({**self.header, "seq": seq}, separators=(",", ":")).encode()
        head += b" " * (-len(head) % 4)
        return struct.pack("<I", len(head)) + head + self.payload.tobytes()


def segment_lengths(n_ic: int) -> tuple[int, int]:
    """Samples per trajectory in the first segment of a version and in the longest one,
    for ``n_ic`` trajectories (see :data:`FIRST_SEGMENT`, :data:`SEGMENT_BYTES`; at least
    two, so the first segment of a flow draws a line)."""
    longest = max(2, SEGMENT_BYTES // (SAMPLE_FLOATS * 4 * n_ic))
    return min(FIRST_SEGMENT, longest), longest


def parse_segment(raw: bytes) -> tuple[dict[str, Any], np.ndarray]:
    """Header and ``[count, n_ic, 4]`` payload of a segment's bytes (the browser's
    decoding, in Python, for tests and scripts)."""
    (length,) = struct.unpack_from("<I", raw, 0)
    header = json.loads(raw[4:4 + length].decode())
    payload = np.frombuffer(raw, dtype=np.float32, offset=4 + length)
    return header, payload.reshape(header["count"], header["n_ic"], SAMPLE_FLOATS)


def _plan(system: Any, dt: float, periods: float, samples: int) -> tuple[int, int]:
    """(steps between samples, samples per version) for a trajectory ``periods`` long,
    exactly as :func:`~labkit.widgets._attractor_data.attractor_view` samples it."""
    if system.kind == "map":
        n_steps = max(1, round(periods * 10))
        every = max(1, math.ceil((n_steps + 1) / samples))
        return every, math.ceil((n_steps + 1) / every)
    period = system.period or 100 * system.dt
    n_steps = max(1, round(periods * period / dt))
    every = max(1, math.ceil(n_steps / (samples - 1)))
    return every, math.ceil(n_steps / every) + 1


class Ensemble:
    """``n_ic`` trajectories of a flow or map, continued segment by segment.

    Args:
        system, parameters, n_ic, periods, samples, color_by, seed, device, bound,
            variables: as for :func:`~labkit.widgets._attractor_data.attractor_view`
            (same checks, same initial conditions, same sampling): a fresh ensemble's
            first version is that view. ``system`` is a catalogue name or a
            :class:`~labkit.dynamics.System` (a user's own).

    Raises:
        ConfigError: a bad value, quoting it.

    The first version begins at once (the initial states are the ring's first sample);
    call :meth:`advance` until :attr:`complete`. :meth:`add` seeds more trajectories (after
    the ``n_ic`` drawn ones, so :attr:`n_ic` counts both), :meth:`rewind` puts every
    trajectory back at its initial state at ``t = 0``, :meth:`extend` continues by a few
    samples (a step).
    """

    def __init__(self, system: str | System, *, parameters: Mapping[str, Any] | None = None,
                 n_ic: int = 256, periods: float = 10.0, samples: int = 800,
                 color_by: str = "time", seed: int = 0, device: str = "auto",
                 bound: float | None = None, variables: Sequence[int] | None = None,
                 version: int = 1) -> None:
        self.system = as_system(system)
        self.n_ic = self.n_drawn = _check_int("n_ic", n_ic, 1, MAX_IC)
        self.seed = seed
        self.bound = bound
        self.device = resolve_device(device)
        self.dtype = _dtype_for(self.device)
        self.dt = integration_step(self.system)
        self.seeds = torch.zeros(0, self.system.dim, dtype=self.dtype, device=self.device)
        self.group = np.zeros(self.n_ic, dtype=np.int32)  # 0: drawn; k: the k-th seeding
        self.steps = 0
        self._set_sampling(periods, samples, color_by, variables)
        self._set_parameters(parameters)
        self.diverged = np.zeros(self.n_ic, dtype=bool)
        self.diverged_at = np.full(self.n_ic, math.nan)
        self.last_xyz = np.zeros((self.n_ic, 3), dtype=np.float32)  # last finite positions
        self.restart(version=version)

    # ---- settings -------------------------------------------------------------------------
    def _set_sampling(self, periods: float, samples: int, color_by: str,
                      variables: Sequence[int] | None = None) -> None:
        samples = _check_int("samples", samples, 2, MAX_SAMPLES)
        periods = _check_float("periods", periods, 0.01, 1e4)
        if color_by not in COLOR_MODES:
            raise ConfigError(f"color_by must be one of {COLOR_MODES}, got {color_by!r}")
        dim = self.system.dim
        drawn = check_variables(list(variables) if variables is not None
                                else default_variables(dim), dim)
        if self.n_ic * samples * 3 > MAX_BUFFER_FLOATS:
            raise ConfigError(f"n_ic * samples = {self.n_ic * samples} is too many points for "
                              f"one view (at most {MAX_BUFFER_FLOATS // 3})")
        self.periods, self.samples, self.color_by = periods, samples, color_by
        self.variables = drawn
        self.every, self.capacity = _plan(self.system, self.dt, periods, samples)
        self.gap = float(self.every) if self.system.kind == "map" else self.every * self.dt

    def _set_parameters(self, parameters: Mapping[str, Any] | None) -> None:
        overrides = dict(parameters or {})
        self.parameters = self.system.params(overrides)  # unknown names: ConfigError
        for key, value in overrides.items():
            if isinstance(value, torch.Tensor) and value.numel() != 1:
                raise ConfigError(f"parameter {key!r} must be one value here, got shape "
                                  f"{tuple(value.shape)}")
        self.overrides = overrides
        self.field = (self.system.vector_field(**overrides) if self.system.kind == "flow"
                      else None)

    # ---- versions -------------------------------------------------------------------------
    def restart(self, *, version: int) -> None:
        """New initial conditions (drawn from ``seed`` with the current parameters, as a
        fresh viewer would; seeded trajectories go back to their seeds) at ``t = 0`` in a
        fresh ring."""
        with torch.no_grad():
            y0, self.note = _starting_states(self.system, self.overrides, self.n_drawn,
                                             self.dt, make_generator(self.seed), self.dtype,
                                             self.device)
        self.y0 = torch.cat([y0, self.seeds])
        self.rewind()
        self._fresh_ring(version)

    def rewind(self) -> None:
        """Every trajectory back at its initial state (the drawn ones and the seeds) at
        ``t = 0``; takes effect in the next fresh ring (:meth:`resample`)."""
        self.y = self.y0.clone()
        self.t = 0.0
        self.diverged[:] = False
        self.diverged_at[:] = math.nan

    def add(self, states: Any, *, group: int) -> None:
        """Seed trajectories at ``states`` (``[k, dim]``, finite), after the others, in
        seeding ``group`` (> 0); they start at the present time and go on with the rest
        from the next fresh ring (:meth:`resample`). A :meth:`rewind` brings them back
        here.

        Raises:
            ConfigError: states of the wrong shape or not finite, or more trajectories
                than :data:`MAX_IC` (or than one view holds).
        """
        dim = self.system.dim
        new = torch.as_tensor(np.asarray(states, dtype=np.float64), dtype=self.dtype,
                              device=self.device)
        if new.ndim == 1:
            new = new[None]
        if new.ndim != 2 or new.shape[-1] != dim or not len(new):
            raise ConfigError(f"seed states must have shape [k, {dim}], got "
                              f"{tuple(np.shape(states))}")
        if not torch.isfinite(new).all():
            raise ConfigError(f"seed states must be finite, got {new.tolist()}")
        total = self.n_ic + len(new)
        if total > MAX_IC or total * self.samples * 3 > MAX_BUFFER_FLOATS:
            raise ConfigError(f"{len(new)} more trajectories make {total}: at most {MAX_IC} "
                              f"(and {MAX_BUFFER_FLOATS // 3 // self.samples} at "
                              f"{self.samples} samples); restart to clear the seeded ones")
        self.seeds = torch.cat([self.seeds, new])
        self.y0 = torch.cat([self.y0, new])
        self.y = torch.cat([self.y, new])
        self.n_ic = total
        self.group = np.concatenate([self.group, np.full(len(new), group, dtype=np.int32)])
        self.diverged = np.concatenate([self.diverged, np.zeros(len(new), dtype=bool)])
        self.diverged_at = np.concatenate([self.diverged_at, np.full(len(new), math.nan)])
        self.last_xyz = np.concatenate([self.last_xyz, self._xyz(new)])

    def retune(self, parameters: Mapping[str, Any] | None, *, version: int) -> None:
        """Bind new parameters; the trajectories go on from their present states in the
        same ring. Trajectories that diverged stay diverged (drawn in red) until a
        restart; when all have, this restarts, since nothing is left to continue."""
        self._set_parameters(parameters)
        if self.diverged.all():
            self.restart(version=version)
            return
        self._begin(version, reset=False)

    def resample(self, *, parameters: Mapping[str, Any] | None, periods: float, samples: int,
                 color_by: str, version: int, variables: Sequence[int] | None = None) -> None:
        """New length, sample count, colour mode or drawn variables (and parameters): the
        present states go on into a fresh ring (old samples were taken at another spacing,
        carry another colour value or other variables)."""
        self._set_sampling(periods, samples, color_by,
                           variables if variables is not None else self.variables)
        self._set_parameters(parameters)
        self._fresh_ring(version)

    def extend(self, count: int, *, version: int) -> None:
        """Continue every trajectory by ``count`` more samples in the same ring (a step
        forward), keeping the version's start and colour scale."""
        self.version = version
        self.left = _check_int("count", count, 1, self.capacity - 1)
        self.reset_pending = False
        self.pending_from = self.written
        self.seconds = 0.0
        self.steps = 0

    def _fresh_ring(self, version: int) -> None:
        self.ring = np.zeros((self.capacity, self.n_ic, SAMPLE_FLOATS), dtype=np.float32)
        self.ring_t = np.zeros(self.capacity)
        self.slot_lo = np.full((self.capacity, 3), np.inf, dtype=np.float32)
        self.slot_hi = np.full((self.capacity, 3), -np.inf, dtype=np.float32)
        self.rows = self._section_rows()
        self.full = np.full((self.capacity, len(self.rows), self.system.dim), np.nan,
                            dtype=np.float32)
        self.written = 0
        # Index of each trajectory's first held sample (after it diverged), -1 if none.
        self.diverged_from = np.where(self.diverged, 0, -1)
        self._begin(version, reset=True)
        # The present states are the ring's first sample (the initial states, after a
        # restart), so the first segment starts where the picture was.
        gone = ~torch.isfinite(self.y).all(-1).cpu().numpy()
        xyz = self._xyz(self.y)
        xyz[gone] = self.last_xyz[gone]
        raw = self._raw_colours(self.y[:, None], self.y, np.array([self.t]))[:, 0]
        full = self.y[torch.as_tensor(self.rows, device=self.device)].float().cpu().numpy()
        self._write(xyz[:, None], raw[:, None], np.array([self.t]), full[:, None])

    def _section_rows(self) -> np.ndarray:
        """The trajectories whose whole states are kept for the section: the seeded ones,
        then the first drawn ones, within :data:`SECTION_ROWS` and :data:`SECTION_FLOATS`."""
        budget = max(1, min(SECTION_ROWS, SECTION_FLOATS // (self.capacity * self.system.dim)))
        seeded = np.arange(self.n_drawn, self.n_ic)[-budget:]
        drawn = np.arange(min(self.n_drawn, budget - len(seeded)))
        return np.concatenate([drawn, seeded]).astype(np.int64)

    def _begin(self, version: int, *, reset: bool) -> None:
        self.version = version
        self.reset_pending = reset
        self.epoch_start = self.written
        self.epoch_t0 = self.t
        self.pending_from = self.written  # the next segment starts here
        self.left = self.capacity - 1
        self.range: tuple[float, float] | None = None
        self.diverged_sent: list[int] | None = None
        self.seconds = 0.0
        self.steps = 0
        if self.color_by == "time":
            self.range = (0.0, (self.capacity - 1) * self.gap)

    @property
    def complete(self) -> bool:
        """True when the current version has all its samples."""
        return self.left == 0

    # ---- integration ----------------------------------------------------------------------
    def advance(self, count: int) -> Segment:
        """Integrate up to ``count`` more samples of every trajectory from its present state
        (fewer when the version needs fewer) and return the samples not yet sent."""
        t_start = time.perf_counter()
        count = max(0, min(int(count), self.left))
        if count:
            self._write(*self._integrate(count))
            self.left -= count
            self.steps += count * self.every
        segment = self._segment(self.pending_from, self.written - self.pending_from,
                                reset=self.reset_pending, snapshot=False)
        self.pending_from = self.written
        self.reset_pending = False
        self.seconds += time.perf_counter() - t_start
        return segment

    def _integrate(self, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``count`` samples of all trajectories: positions ``[n, count, 3]`` (held at the
        last finite one after a divergence), raw colours ``[n, count]``, times, and the
        whole states of the section's rows ``[rows, count, dim]`` (NaN once diverged)."""
        times = self.t + self.gap * np.arange(1, count + 1)
        xyz = np.repeat(self.last_xyz[:, None], count, axis=1)
        raw = np.zeros((self.n_ic, count), dtype=np.float32)
        full = np.full((len(self.rows), count, self.system.dim), np.nan, dtype=np.float32)
        live = np.flatnonzero(~self.diverged)
        if len(live):
            idx = torch.as_tensor(live, device=self.device)
            start = self.y[idx]
            with torch.no_grad():
                if self.system.kind == "map":
                    traj = self.system.iterate(start, count * self.every, bound=self.bound,
                                               **self.overrides)
                    y = traj.y[:, self.every::self.every]
                    hit_at = self.t + traj.diverged_at.double().cpu().numpy()
                else:
                    assert self.field is not None  # a flow's field, set with the system
                    traj = rk4(self.field, start, (self.t, self.t + count * self.gap), self.dt,
                               save_every=self.every, bound=self.bound)
                    y = traj.y[:, 1:]
                    hit_at = traj.diverged_at.double().cpu().numpy()
                live_raw = self._raw_colours(y, start, times)
            pos = self._xyz(y)  # NaN after a divergence
            finite = np.asarray(np.isfinite(pos).all(-1))
            # Hold each trajectory at its last finite sample (before the segment if none).
            last = np.maximum.accumulate(np.where(finite, np.arange(count), -1), axis=1)
            held = np.take_along_axis(pos, np.maximum(last, 0)[..., None], axis=1)
            held = np.where((last >= 0)[..., None], held, self.last_xyz[live, None])
            xyz[live] = held
            raw[live] = np.where(finite, live_raw, 0.0)
            at = np.full(self.n_ic, -1)
            at[live] = np.arange(len(live))
            kept = at[self.rows] >= 0
            if kept.any():
                pick = torch.as_tensor(at[self.rows][kept], device=y.device)
                full[kept] = y[pick].float().cpu().numpy()
            hit = traj.diverged.cpu().numpy()
            if hit.any():
                rows = live[hit]
                self.diverged[rows] = True
                self.diverged_at[rows] = hit_at[hit]
                first_bad = np.argmin(finite[hit], axis=1)  # first non-finite sample
                self.diverged_from[rows] = self.written + first_bad
            new_y = y[:, -1]
            self.y[idx] = new_y
        self.t = float(times[-1])
        return xyz, raw, times, full

    def _xyz(self, y: torch.Tensor) -> np.ndarray:
        """The three drawn variables (:attr:`variables`) as float32, zero on an axis with
        none."""
        cols = [k if k != NO_VARIABLE else 0 for k in self.variables]
        out = y[..., cols].float().cpu().numpy()
        for axis, k in enumerate(self.variables):
            if k == NO_VARIABLE:
                out[..., axis] = 0.0
        return np.ascontiguousarray(out)

    def _raw_colours(self, y: torch.Tensor, before: torch.Tensor, times: np.ndarray) -> np.ndarray:
        """Raw colour values of samples ``y`` ``[n, k, dim]`` that follow the states
        ``before`` ``[n, dim]`` (a map's step length needs the previous state)."""
        if self.color_by == "time":
            return np.broadcast_to((times - self.epoch_t0).astype(np.float32),
                                   y.shape[:-1]).copy()
        with torch.no_grad():
            ext = torch.cat([before[:, None], y], dim=1)
            t = torch.zeros(ext.shape[-2], dtype=ext.dtype, device=ext.device)
            values, _ = _color_values(self.system, self.overrides, ext, self.color_by, t)
        return values[:, 1:].float().cpu().numpy()

    def _write(self, xyz: np.ndarray, raw: np.ndarray, times: np.ndarray,
               full: np.ndarray) -> None:
        """Append ``[n, k]`` samples to the ring (``full``: the section rows' whole states
        ``[rows, k, dim]``); update the colour range and bounds."""
        k = xyz.shape[1]
        slots = (self.written + np.arange(k)) % self.capacity
        self.ring[slots, :, :3] = xyz.transpose(1, 0, 2)
        self.ring[slots, :, 3] = raw.T
        self.ring_t[slots] = times
        self.full[slots] = full.transpose(1, 0, 2)
        self.slot_lo[slots] = xyz.min(axis=0)
        self.slot_hi[slots] = xyz.max(axis=0)
        self.last_xyz = xyz[:, -1].copy()
        self.written += k
        if self.color_by != "time":
            good = raw[~self.diverged]
            good = good[np.isfinite(good)]
            if good.size:
                lo, hi = (float(v) for v in np.percentile(good, COLOR_PERCENTILES))
                if self.range is not None:
                    lo, hi = min(lo, self.range[0]), max(hi, self.range[1])
                self.range = (lo, hi if hi > lo else lo + 1.0)

    @property
    def oldest(self) -> int:
        """Index of the oldest sample still in the ring."""
        return max(0, self.written - self.capacity)

    def _limit(self) -> str:
        return f"|y| > {self.bound:g}" if self.bound is not None else "beyond the divergence bound"

    def bounds(self) -> list[float]:
        """Lower and upper corner of the positions in the ring, flattened."""
        filled = min(self.written, self.capacity)
        if not filled:
            return [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
        used = (self.oldest + np.arange(filled)) % self.capacity
        return [float(v) for v in np.concatenate([self.slot_lo[used].min(0),
                                                  self.slot_hi[used].max(0)])]

    def _segment(self, start: int, count: int, *, reset: bool, snapshot: bool) -> Segment:
        slots = (start + np.arange(count)) % self.capacity
        diverged = np.flatnonzero(self.diverged).tolist()
        header = {
            "version": self.version, "reset": reset, "snapshot": snapshot,
            "n_ic": self.n_ic, "capacity": self.capacity, "kind": self.system.kind,
            "start": start, "count": count, "epoch_start": self.epoch_start,
            "complete": self.complete,
            "t0": float(self.ring_t[slots[0]]) if count else self.t, "gap": self.gap,
            "range": list(self.range or (0.0, 1.0)), "bounds": self.bounds(),
        }
        if reset or snapshot or diverged != self.diverged_sent:
            header["diverged"] = diverged
            self.diverged_sent = diverged
        return Segment(header, np.ascontiguousarray(self.ring[slots]))

    def snapshot(self) -> Segment:
        """The whole ring as one segment, for a browser view that has missed some."""
        filled = min(self.written, self.capacity)
        return self._segment(self.oldest, filled, reset=True, snapshot=True)

    def message(self) -> str:
        """What went wrong, if anything: the starting orbit diverged, trajectories
        diverged (how many, the first when)."""
        text = self.note
        if self.diverged.any():
            first = float(np.nanmin(self.diverged_at))
            unit = "iteration" if self.system.kind == "map" else "t ="
            text += (f"{int(self.diverged.sum())} of {self.n_ic} trajectories diverged "
                     f"(non-finite or {self._limit()}); the first at {unit} {first:.4g}. "
                     "They are drawn in red; restart to draw new initial conditions.")
        return text.strip()

    @property
    def var_names(self) -> tuple[str, str, str]:
        """Names of the three drawn variables (``"0"`` on an axis with none)."""
        return drawn_names(self.variables)

    def data(self) -> AttractorData:
        """The ring as an :class:`AttractorData` (oldest sample first), for the static
        figure and for scripts: what the browser holds."""
        filled = min(self.written, self.capacity)
        slots = (self.oldest + np.arange(filled)) % self.capacity
        ring = self.ring[slots]
        lo, hi = self.range or (0.0, 1.0)
        colours = np.clip((ring[..., 3].T - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
        held_from = np.where(self.diverged_from >= 0, self.diverged_from - self.oldest, filled)
        bounds = np.asarray(self.bounds(), dtype=np.float64).reshape(2, 3)
        return AttractorData(
            system=self.system.name, kind=self.system.kind, parameters=dict(self.parameters),
            positions=np.ascontiguousarray(ring[..., :3].transpose(1, 0, 2)),
            colors=np.ascontiguousarray(colours),
            valid=np.clip(held_from, 0, filled).astype(np.int32),
            diverged=self.diverged.copy(), diverged_at=self.diverged_at.copy(),
            t=self.ring_t[slots].copy(), bounds=bounds, color_by=self.color_by,
            color_range=(float(lo), float(hi)), var_names=self.var_names,
            dt=float(self.dt), seconds=self.seconds, message=self.message(),
        )

    def held_states(self) -> SectionInput:
        """A copy of what the Poincare section is computed from (the kept trajectories'
        whole states over the held samples), taken under the caller's lock so that the
        section itself (:func:`compute_section`) can be computed outside it."""
        filled = min(self.written, self.capacity)
        slots = (self.oldest + np.arange(filled)) % self.capacity
        return SectionInput(kind=self.system.kind, dim=self.system.dim,
                            variables=tuple(self.variables),
                            states=self.full[slots].transpose(1, 0, 2).astype(np.float64),
                            t=self.ring_t[slots].copy(), groups=self.group[self.rows].copy())

    def section(self, variable: int, value: float | None = None) -> SectionData:
        """The Poincare section of the held samples: :func:`compute_section` of
        :meth:`held_states`."""
        return compute_section(self.held_states(), variable, value)


@dataclasses.dataclass(frozen=True)
class SectionInput:
    """What a Poincare section is computed from: the system's ``kind`` and ``dim``, the
    drawn ``variables``, the kept trajectories' whole ``states`` ``[rows, time, dim]``
    (NaN once diverged), the sample times ``t`` and each row's seeding group."""

    kind: str
    dim: int
    variables: tuple[int, ...]
    states: np.ndarray
    t: np.ndarray
    groups: np.ndarray


def compute_section(held: SectionInput, variable: int, value: float | None = None) -> SectionData:
    """The Poincare section of ``held`` (:func:`section_axes` says which variables it
    shows): for a flow, where the kept trajectories cross ``y[variable] = value`` upwards
    (:func:`labkit.dynamics.poincare_section`, linear between samples; ``value`` ``None``:
    the median of that variable over the held samples); for a map, its iterates
    themselves. Trajectories that diverged within the ring are left out.

    Raises:
        ConfigError: ``variable`` not in ``[0, dim)`` (a flow).
    """
    dim, kind = held.dim, held.kind
    axes = section_axes(kind, dim, held.variables, variable)
    finite = np.isfinite(held.states).all(axis=(1, 2))
    states, groups = held.states[finite], held.groups[finite]
    if kind == "flow":
        variable = _check_int("section variable", variable, 0, dim - 1)
    span = (0.0, 1.0)
    if states.size and kind == "flow":
        column = states[..., variable]
        span = (float(column.min()), float(column.max()))
        if value is None:
            value = float(np.median(column))
    empty = SectionData(kind=kind, variable=variable if kind == "flow" else NO_VARIABLE,
                        value=math.nan if value is None or kind == "map" else float(value),
                        axes=axes or (0, 0), states=np.zeros((0, dim)),
                        groups=np.zeros(0, dtype=np.int32), span=span, message="")
    if axes is None:
        why = ("a map of one variable has no plane to show" if kind == "map" else
               "a Poincare section needs a flow of at least 3 variables")
        return dataclasses.replace(empty, message=why)
    if len(states) == 0 or states.shape[1] < 2:
        return dataclasses.replace(empty, message="no samples yet")
    if kind == "map":
        points = states.reshape(-1, dim)
        of = np.repeat(groups, states.shape[1])
    else:
        normal = np.zeros(dim)
        normal[variable] = 1.0
        crossings = poincare_section(torch.from_numpy(states), torch.from_numpy(held.t),
                                     torch.from_numpy(normal), float(empty.value), direction=1)
        counts = crossings.counts
        points = torch.cat(crossings.points).numpy() if sum(counts) else np.zeros((0, dim))
        of = np.repeat(groups, counts)
    keep = _thin(of)
    message = "" if len(points) else (f"no trajectory crosses {_name(variable)} = "
                                      f"{empty.value:.4g} upwards: choose another value")
    return dataclasses.replace(empty, states=points[keep], groups=of[keep].astype(np.int32),
                               message=message)


def _name(k: int) -> str:
    return f"x{k}"


def _thin(groups: np.ndarray) -> np.ndarray:
    """Indices of at most :data:`MAX_SECTION_POINTS` points: every seeded one (group > 0),
    then the drawn trajectories' evenly thinned."""
    seeded = np.flatnonzero(groups > 0)[-MAX_SECTION_POINTS:]
    drawn = np.flatnonzero(groups == 0)
    room = MAX_SECTION_POINTS - len(seeded)
    if len(drawn) > room:
        drawn = drawn[np.linspace(0, len(drawn) - 1, max(room, 0)).astype(np.int64)] \
            if room > 0 else drawn[:0]
    return np.sort(np.concatenate([drawn, seeded]))


@dataclasses.dataclass(frozen=True)
class SectionData:
    """A Poincare section of the viewer's trajectories.

    Attributes:
        kind: the system's kind: ``"flow"`` (crossings of ``y[variable] = value``) or
            ``"map"`` (the iterates themselves; ``variable`` -1, ``value`` NaN).
        axes: the two variables shown, horizontal and vertical.
        states: ``[k, dim]`` the whole states at the crossings (iterates of a map).
        groups: ``[k]`` 0 for the drawn trajectories, ``g`` for those of the ``g``-th
            seeding.
        span: the range of ``y[variable]`` over the held samples (for choosing ``value``).
        message: empty, or why there are no points.
    """

    kind: str
    variable: int
    value: float
    axes: tuple[int, int]
    states: np.ndarray
    groups: np.ndarray
    span: tuple[float, float]
    message: str

    def points(self) -> np.ndarray:
        """``[k, 3]`` float32: the two shown variables and the group (what the browser
        draws)."""
        u, v = self.axes
        return np.ascontiguousarray(np.stack([self.states[:, u], self.states[:, v],
                                              self.groups], -1), dtype=np.float32)


def section_axes(kind: str, dim: int, variables: Sequence[int],
                 variable: int) -> tuple[int, int] | None:
    """The two variables a section shows: a flow's drawn variables other than the
    section's ``variable`` (then the rest in order); a map's first two drawn variables.
    None where there are not two."""
    drawn = [k for k in variables if k != NO_VARIABLE]
    if kind == "map":
        return (drawn[0], drawn[1]) if len(drawn) >= 2 else None
    if dim < 3:
        return None
    others = [k for k in drawn if k != variable]
    others += [k for k in range(dim) if k != variable and k not in others]
    return others[0], others[1]


def section_seed(section: SectionData, u: float, v: float,
                 fallback: np.ndarray) -> np.ndarray:
    """The whole state a click at ``(u, v)`` on ``section`` stands for: ``u`` and ``v`` in
    the shown variables, the section's value in its variable (a flow), and the other
    variables of the nearest point of the section (or of ``fallback`` when it has none).

    Raises:
        ConfigError: ``u`` or ``v`` not a finite number.
    """
    for name, x in (("u", u), ("v", v)):
        if isinstance(x, bool) or not isinstance(x, int | float | np.floating) \
                or not math.isfinite(x):
            raise ConfigError(f"a section point must be two finite numbers; {name} = {x!r}")
    a, b = section.axes
    if len(section.states):
        near = np.argmin((section.states[:, a] - u) ** 2 + (section.states[:, b] - v) ** 2)
        state = section.states[near].astype(np.float64).copy()
    else:
        state = np.asarray(fallback, dtype=np.float64).copy()
    state[a], state[b] = float(u), float(v)
    if section.kind == "flow":
        state[section.variable] = section.value
    return state
