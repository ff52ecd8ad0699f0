"""Given series (e.g. a true attractor and a learned reconstruction) as an
:class:`~labkit.widgets._attractor_data.AttractorData` for the AttractorViewer's series
mode: comets per series, coloured by series, time or an integer code per sample."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from labkit.core.integrate import DEFAULT_BOUND
from labkit.errors import ConfigError, DataError
from labkit.widgets._attractor_data import (
    MAX_BUFFER_FLOATS,
    MAX_IC,
    NO_CODE,
    PALETTE_OFFSET,
    PALETTE_SIZE,
    SERIES_COLOR_MODES,
    AttractorData,
    _check_float,
    _check_int,
)

__all__ = ["series_view"]


def _given_series(name: str, x: Any) -> np.ndarray:
    """A given series as float64 ``[time, dim]`` (non-finite values kept: they mark a
    divergence)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise DataError(f"series {name!r} must be a numeric array [time, dim], got "
                        f"{type(x).__name__}") from err
    if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] < 1:
        raise DataError(f"series {name!r} must have shape [time, dim] with time >= 2, got "
                        f"{tuple(arr.shape)}")
    return arr


def _given_codes(name: str, c: Any, n_time: int) -> np.ndarray:
    if isinstance(c, torch.Tensor):
        c = c.detach().cpu().numpy()
    arr = np.asarray(c)
    if arr.shape != (n_time,):
        raise DataError(f"codes of {name!r} must have shape [time] = ({n_time},) like the "
                        f"series, got {arr.shape}")
    if arr.dtype.kind not in "iub":
        raise DataError(f"codes of {name!r} must be integers, got dtype {arr.dtype}")
    if n_time and arr.min() < 0:
        raise DataError(f"codes of {name!r} must be >= 0, got {int(arr.min())}")
    return arr.astype(np.int64)


def series_view(series: Mapping[str, Any], *, codes: Mapping[str, Any] | None = None,
                color_by: str = "series", hidden: Any = (), chunks: int = 16,
                dt: float = 1.0, bound: float = DEFAULT_BOUND) -> AttractorData:
    """Given trajectories (a true series, a model's free run, ...) packed for the viewer.

    Each series ``[time, dim]`` is cut into stretches of ``L = max(2, min_time // chunks)``
    samples, drawn as comets that run at once (the remainder of a series that does not
    fill a stretch is left out). The first three variables are drawn (fewer are zero
    padded). A series is finite up to its first sample that is non-finite or beyond
    ``bound``: it is drawn up to there (the stretch holding it in red) and named in
    ``message``.

    Args:
        series: name -> ``[time, dim]`` (numpy or torch); all of one ``dim``, lengths may
            differ. Order sets the series colours.
        codes: name -> ``[time]`` non-negative integer code per sample (e.g.
            :meth:`~labkit.dynamics.ALRNN.symbolic_code` of the latent run), for
            ``color_by="codes"``; series without codes are grey then.
        color_by: one of :data:`SERIES_COLOR_MODES`.
        hidden: names of series not drawn (they still set the bounds, so the camera stays).
        chunks: comets per series of the shortest length, in ``[1, 4096]``.
        dt: time per sample (for the time axis).
        bound: a sample beyond this magnitude counts as diverged.

    Raises:
        DataError: an empty mapping, a series that is not ``[time, dim]``, series of
            different ``dim``, codes for an unknown series or of the wrong shape/type.
        ConfigError: an unknown ``color_by``, ``"codes"`` without codes, bad ``chunks``.
    """
    t_start = time.perf_counter()
    if not isinstance(series, Mapping) or not series:
        raise DataError(f"series must be a non-empty mapping name -> [time, dim], got "
                        f"{type(series).__name__}")
    arrays = {str(k): _given_series(str(k), v) for k, v in series.items()}
    names = list(arrays)
    first = names[0]
    for name in names[1:]:
        if arrays[name].shape[1] != arrays[first].shape[1]:
            raise DataError(f"series {first!r} has {arrays[first].shape[1]} dimensions but "
                            f"{name!r} has {arrays[name].shape[1]}: shapes "
                            f"{arrays[first].shape} and {arrays[name].shape}")
    code_arrays: dict[str, np.ndarray] = {}
    for key, c in (codes or {}).items():
        if key not in arrays:
            raise DataError(f"codes given for {key!r}, which is not one of the series {names}")
        code_arrays[key] = _given_codes(key, c, arrays[key].shape[0])
    if color_by not in SERIES_COLOR_MODES:
        raise ConfigError(f"color_by must be one of {SERIES_COLOR_MODES} for given series, "
                          f"got {color_by!r}")
    if color_by == "codes" and not code_arrays:
        raise ConfigError("color_by='codes' needs codes (e.g. an AL-RNN's symbolic code per "
                          "sample); none were given")
    chunks = _check_int("chunks", chunks, 1, 4096)
    dt = _check_float("dt", dt, 1e-12, 1e12)
    total = sum(a.shape[0] for a in arrays.values())
    if total * 3 > MAX_BUFFER_FLOATS:
        raise DataError(f"the series hold {total} samples, too many for one view (at most "
                        f"{MAX_BUFFER_FLOATS // 3})")
    length = max(2, min(a.shape[0] for a in arrays.values()) // chunks)
    dim = arrays[first].shape[1]
    pos, col, valid, owner, notes, boxes = [], [], [], [], [], []
    for i, name in enumerate(names):
        y = arrays[name]
        n_time = y.shape[0]
        bad = ~np.isfinite(y).all(1) | (np.abs(np.nan_to_num(y, nan=0.0)) > bound).any(1)
        n_ok = int(np.argmax(bad)) if bad.any() else n_time
        if n_ok < n_time:
            notes.append(f"{name!r} diverged at sample {n_ok} of {n_time} (non-finite or "
                         f"|y| > {bound:g}); drawn up to there, that stretch in red.")
        xyz = np.zeros((n_time, 3))
        xyz[:n_ok, :min(3, dim)] = y[:n_ok, :3]
        if n_ok:
            xyz[n_ok:] = xyz[n_ok - 1]
            boxes.append(np.stack([xyz[:n_ok].min(0), xyz[:n_ok].max(0)]))
        if name in hidden:
            continue
        k = n_time // length
        used = k * length
        if color_by == "series":
            c = np.full(used, PALETTE_OFFSET + i % PALETTE_SIZE)
        elif color_by == "time":
            c = np.arange(used) / max(1, n_time - 1)
        elif name in code_arrays:
            c = PALETTE_OFFSET + code_arrays[name][:used] % PALETTE_SIZE
        else:
            c = np.full(used, PALETTE_OFFSET + NO_CODE)
        pos.append(xyz[:used].reshape(k, length, 3))
        col.append(c.reshape(k, length))
        valid.append(np.clip(n_ok - length * np.arange(k), 0, length))
        owner.append(np.full(k, i))
    positions = np.concatenate(pos) if pos else np.zeros((0, length, 3))
    colors = np.concatenate(col) if col else np.zeros((0, length))
    n_valid = np.concatenate(valid) if valid else np.zeros(0, int)
    if positions.shape[0] > MAX_IC:
        raise ConfigError(f"{positions.shape[0]} stretches are too many comets (at most "
                          f"{MAX_IC}); use fewer chunks")
    bounds = (np.stack([np.min([b[0] for b in boxes], 0), np.max([b[1] for b in boxes], 0)])
              if boxes else np.zeros((2, 3)))
    diverged = n_valid < length
    var = [f"x{i}" for i in range(dim)][:3]
    return AttractorData(
        system="series", kind="flow", parameters={},
        positions=np.ascontiguousarray(positions, dtype=np.float32),
        colors=np.ascontiguousarray(colors, dtype=np.float32),
        valid=n_valid.astype(np.int32), diverged=diverged,
        diverged_at=np.where(diverged, n_valid * dt, np.nan),
        t=np.arange(length) * dt, bounds=bounds.astype(np.float64), color_by=color_by,
        color_range=(0.0, 1.0), var_names=tuple(var + ["0"] * (3 - len(var))),  # type: ignore[arg-type]
        dt=dt, seconds=time.perf_counter() - t_start, message=" ".join(notes),
        series=tuple(names),
        series_of=np.concatenate(owner).astype(np.int32) if owner else np.zeros(0, np.int32))
