"""Shared plumbing of the crystal metrics: argument checks and the process pool.

Structures travel to worker processes as ``Structure.as_dict()`` payloads, so every worker
function (in :mod:`labkit.atoms._matching`, :mod:`labkit.atoms._validity` and
:mod:`labkit.atoms._coverage`) is a top-level, picklable function. pymatgen is imported
inside the functions, so importing this module stays light.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any

from labkit.core.config import check_int
from labkit.errors import DataError


def _processes(processes: int | None) -> int:
    if processes is None:
        return os.cpu_count() or 1
    check_int("processes", processes)
    return processes


def _pmap(fn: Callable[[Any], Any], items: list, processes: int | None) -> list:
    """``[fn(x) for x in items]``, in a process pool when ``processes > 1``."""
    n = _processes(processes)
    if n == 1 or len(items) <= 1:
        return [fn(x) for x in items]
    from concurrent.futures import ProcessPoolExecutor

    workers = min(n, len(items))
    chunk = max(1, math.ceil(len(items) / (8 * workers)))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items, chunksize=chunk))


def _check_structures(name: str, structures: Sequence, *, allow_none: bool = False) -> None:
    from pymatgen.core import Structure

    if isinstance(structures, Structure) or not isinstance(structures, Sequence):
        raise DataError(f"{name} must be a list of pymatgen Structure, got "
                        f"{type(structures).__name__}")
    for i, s in enumerate(structures):
        if s is None and allow_none:
            continue
        if not isinstance(s, Structure):
            what = "a pymatgen Structure or None" if allow_none else "a pymatgen Structure"
            raise DataError(f"{name}[{i}] must be {what}, got {type(s).__name__}")


def _payload(structure) -> dict | None:
    """What travels to a worker process: the structure's dict (``None`` stays ``None``)."""
    return None if structure is None else structure.as_dict()


def _structure(payload: dict):
    from pymatgen.core import Structure

    return Structure.from_dict(payload)



def _composition(obj):
    from pymatgen.core import Composition, Structure

    if isinstance(obj, Structure):
        return obj.composition
    if isinstance(obj, Composition):
        return obj
    if isinstance(obj, str):
        try:
            return Composition(obj)
        except Exception as exc:
            raise DataError(f"could not read the formula {obj!r}: {exc}") from exc
    raise DataError(f"expected a Structure, Composition or formula, got {type(obj).__name__}")
