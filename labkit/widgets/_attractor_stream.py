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
(the ring then holds the present state and the new stretch), or a fresh ring of
``capacity`` samples after a restart (new initial conditions) or a change of ``periods``,
``samples`` or ``color_by`` (which change what a sample is, so old samples cannot stay).
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
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from labkit.core.device import resolve_device
from labkit.core.integrate import rk4
from labkit.core.rng import make_generator
from labkit.dynamics import get_system
from labkit.errors import ConfigError
from labkit.widgets._attractor_data import (
    COLOR_MODES,
    MAX_BUFFER_FLOATS,
    MAX_IC,
    MAX_SAMPLES,
    AttractorData,
    _check_float,
    _check_int,
    _color_values,
    _dtype_for,
    _starting_states,
    integration_step,
)

__all__ = [
    "FIRST_SEGMENT",
    "SEGMENT_BYTES",
    "Ensemble",
    "Segment",
    "parse_segment",
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
    """``n_ic`` trajectories of a catalogue system, continued segment by segment.

    Args:
        system, parameters, n_ic, periods, samples, color_by, seed, device, bound: as for
            :func:`~labkit.widgets._attractor_data.attractor_view` (same checks, same
            initial conditions, same sampling): a fresh ensemble's first version is that
            view.

    Raises:
        ConfigError: a bad value, quoting it.

    The first version begins at once (the initial states are the ring's first sample);
    call :meth:`advance` until :attr:`complete`.
    """

    def __init__(self, system: str, *, parameters: Mapping[str, Any] | None = None,
                 n_ic: int = 256, periods: float = 10.0, samples: int = 800,
                 color_by: str = "time", seed: int = 0, device: str = "auto",
                 bound: float | None = None, version: int = 1) -> None:
        self.system = get_system(system)
        self.n_ic = _check_int("n_ic", n_ic, 1, MAX_IC)
        self.seed = seed
        self.bound = bound
        self.device = resolve_device(device)
        self.dtype = _dtype_for(self.device)
        self.dt = integration_step(self.system.name)
        self._set_sampling(periods, samples, color_by)
        self._set_parameters(parameters)
        self.diverged = np.zeros(self.n_ic, dtype=bool)
        self.diverged_at = np.full(self.n_ic, math.nan)
        self.last_xyz = np.zeros((self.n_ic, 3), dtype=np.float32)  # last finite positions
        self.restart(version=version)

    # ---- settings -------------------------------------------------------------------------
    def _set_sampling(self, periods: float, samples: int, color_by: str) -> None:
        samples = _check_int("samples", samples, 2, MAX_SAMPLES)
        periods = _check_float("periods", periods, 0.01, 1e4)
        if color_by not in COLOR_MODES:
            raise ConfigError(f"color_by must be one of {COLOR_MODES}, got {color_by!r}")
        if self.n_ic * samples * 3 > MAX_BUFFER_FLOATS:
            raise ConfigError(f"n_ic * samples = {self.n_ic * samples} is too many points for "
                              f"one view (at most {MAX_BUFFER_FLOATS // 3})")
        self.periods, self.samples, self.color_by = periods, samples, color_by
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
        fresh viewer would) at ``t = 0`` in a fresh ring."""
        with torch.no_grad():
            y0, self.note = _starting_states(self.system, self.overrides, self.n_ic, self.dt,
                                             make_generator(self.seed), self.dtype, self.device)
        self.y0 = y0
        self.y = y0.clone()
        self.t = 0.0
        self.diverged[:] = False
        self.diverged_at[:] = math.nan
        self._fresh_ring(version)

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
                 color_by: str, version: int) -> None:
        """New length, sample count or colour mode (and parameters): the present states go
        on into a fresh ring (old samples were taken at another spacing or carry another
        colour value)."""
        self._set_sampling(periods, samples, color_by)
        self._set_parameters(parameters)
        self._fresh_ring(version)

    def _fresh_ring(self, version: int) -> None:
        self.ring = np.zeros((self.capacity, self.n_ic, SAMPLE_FLOATS), dtype=np.float32)
        self.ring_t = np.zeros(self.capacity)
        self.slot_lo = np.full((self.capacity, 3), np.inf, dtype=np.float32)
        self.slot_hi = np.full((self.capacity, 3), -np.inf, dtype=np.float32)
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
        self._write(xyz[:, None], raw[:, None], np.array([self.t]))

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
            xyz, raw, times = self._integrate(count)
            self._write(xyz, raw, times)
            self.left -= count
        segment = self._segment(self.pending_from, self.written - self.pending_from,
                                reset=self.reset_pending, snapshot=False)
        self.pending_from = self.written
        self.reset_pending = False
        self.seconds += time.perf_counter() - t_start
        return segment

    def _integrate(self, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``count`` samples of all trajectories: positions ``[n, count, 3]`` (held at the
        last finite one after a divergence), raw colours ``[n, count]``, times."""
        times = self.t + self.gap * np.arange(1, count + 1)
        xyz = np.repeat(self.last_xyz[:, None], count, axis=1)
        raw = np.zeros((self.n_ic, count), dtype=np.float32)
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
        return xyz, raw, times

    def _xyz(self, y: torch.Tensor) -> np.ndarray:
        """The first three variables as float32 (zero padded for 2-D systems)."""
        out = np.zeros((*y.shape[:-1], 3), dtype=np.float32)
        k = min(3, self.system.dim)
        out[..., :k] = y[..., :k].float().cpu().numpy()
        return out

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

    def _write(self, xyz: np.ndarray, raw: np.ndarray, times: np.ndarray) -> None:
        """Append ``[n, k]`` samples to the ring; update the colour range and bounds."""
        k = xyz.shape[1]
        slots = (self.written + np.arange(k)) % self.capacity
        self.ring[slots, :, :3] = xyz.transpose(1, 0, 2)
        self.ring[slots, :, 3] = raw.T
        self.ring_t[slots] = times
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

    # ---- what the browser gets ------------------------------------------------------------
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
        """Names of the three drawn variables (``"0"`` pads a 2-D system)."""
        names = [f"x{i}" for i in range(self.system.dim)][:3]
        names += ["0"] * (3 - len(names))
        return names[0], names[1], names[2]

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
