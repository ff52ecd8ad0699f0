"""``record(name, value)``: results a notebook hands to its report and to sweeps.

A recorded value travels inside the executed notebook itself, as a display output of
the MIME type :data:`RECORD_MIME` (so it survives process boundaries and needs no side
channel). :func:`read_records` collects them from an executed notebook. Outside a
kernel, values are kept in :data:`session_records` instead.
"""

from __future__ import annotations

import json
import math
from typing import Any

from labkit.errors import ConfigError

__all__ = ["MAX_RECORD_SIZE", "PARAMETERS_MIME", "RECORD_MIME", "read_parameters",
           "read_records", "record", "record_parameters", "session_records"]

RECORD_MIME = "application/vnd.labkit.record+json"
#: MIME type of the values a report kernel received for its parameters.
PARAMETERS_MIME = "application/vnd.labkit.parameters+json"
#: Largest number of elements a recorded array may have ("scalars and small arrays").
MAX_RECORD_SIZE = 100_000

session_records: dict[str, Any] = {}


def _plain(value: Any) -> tuple[Any, list[int]]:
    """``value`` as nested lists of Python scalars, and its shape."""
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    if hasattr(value, "tolist") and hasattr(value, "shape"):  # numpy array or scalar
        shape = [int(s) for s in value.shape]
        return value.tolist(), shape
    if isinstance(value, bool | int | float | str) or value is None:
        return value, []
    if isinstance(value, list | tuple):
        import numpy as np

        try:
            arr = np.asarray(value)
        except ValueError as exc:
            raise ConfigError(f"record value must be a rectangular array, got {value!r}") from exc
        if arr.dtype == object:
            raise ConfigError(f"record value must be numbers, bools or strings, got {value!r}")
        return arr.tolist(), [int(s) for s in arr.shape]
    raise ConfigError(
        f"record value must be a scalar, string or small array, got {type(value).__name__}"
    )


def record(name: str, value: Any) -> Any:
    """Record ``value`` (a scalar, string or array of up to :data:`MAX_RECORD_SIZE`
    elements) under ``name`` for the run's ``run.json`` and for sweeps; returns ``value``.

    Non-finite floats are kept (a NaN result is reported as NaN, not dropped).

    Raises:
        ConfigError: for a name that is not an identifier or a value that is too large
            or not array-like.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ConfigError(f"record name must be an identifier, got {name!r}")
    plain, shape = _plain(value)
    size = math.prod(shape)
    if size > MAX_RECORD_SIZE:
        raise ConfigError(
            f"record {name!r} has {size} elements; at most {MAX_RECORD_SIZE} are allowed"
        )
    session_records[name] = plain
    payload = json.dumps({"name": name, "value": plain, "shape": shape}, allow_nan=True)
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return value
    if get_ipython() is not None:
        from IPython.display import display

        display({RECORD_MIME: payload, "text/plain": f"recorded {name} = {_short(plain)}"},
                raw=True)
    return value


def _short(plain: Any) -> str:
    text = repr(plain)
    return text if len(text) <= 80 else text[:77] + "..."


def read_records(nb: Any) -> dict[str, Any]:
    """Every value recorded in an executed notebook (the last one wins for a name)."""
    found: dict[str, Any] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if RECORD_MIME in data:
                payload = data[RECORD_MIME]
                item = json.loads(payload) if isinstance(payload, str) else payload
                found[item["name"]] = item["value"]
    return found


def record_parameters(values: dict[str, Any]) -> None:
    """Display the values the kernel holds for its parameters (a run adds a cell that calls
    this right after the parameters are set, so ``run.json`` reports what the kernel got)."""
    from IPython.display import display

    payload = json.dumps(values, allow_nan=True, default=repr)
    display({PARAMETERS_MIME: payload, "text/plain": f"parameters: {_short(values)}"}, raw=True)


def read_parameters(nb: Any) -> dict[str, Any] | None:
    """The parameter values recorded by :func:`record_parameters` in an executed notebook."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            payload = output.get("data", {}).get(PARAMETERS_MIME)
            if payload is not None:
                return json.loads(payload) if isinstance(payload, str) else dict(payload)
    return None
