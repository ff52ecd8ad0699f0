"""Domain-free foundations: configs, randomness, devices, atomic files, integration.

``labkit.core`` imports no other labkit sub-package and no UI library. Names are loaded
on first use, so ``from labkit.core import atomic_write`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "atomic_open": "cache", "atomic_write": "cache", "default_cache_dir": "cache",
    "FileCache": "cache", "stable_hash": "cache",
    "Config": "config", "check_in": "config", "check_positive": "config",
    "check_int": "config", "check_range": "config",
    "default_device": "device", "describe_device": "device", "resolve_device": "device",
    "DEFAULT_BOUND": "integrate", "BOUND_FACTOR": "integrate", "default_bound": "integrate",
    "resolve_bound": "integrate", "Trajectory": "integrate", "rk4": "integrate", "rk4_step": "integrate",
    "euler": "integrate", "euler_step": "integrate",
    "dopri5": "dopri5",
    "Checkpoint": "train", "FitResult": "train", "History": "train", "fit": "train",
    "CHECKPOINT_EVERY": "train", "CHECKPOINT_FORMAT": "train", "fingerprint": "train", "RunResult": "train", "Trainer": "train", "run": "train",
    "guarded_step": "train", "exponential_schedule": "train", "set_lr": "train",
    "sample_windows": "train", "git_state": "provenance", "check_shapes": "shapes", "make_generator": "rng", "uniform": "rng", "linear_layer": "rng", "numpy_rng": "rng", "spawn_seeds": "rng",
}

__all__ = [
    "BOUND_FACTOR",
    "CHECKPOINT_EVERY",
    "CHECKPOINT_FORMAT",
    "Checkpoint",
    "Config",
    "DEFAULT_BOUND",
    "FileCache",
    "FitResult",
    "History",
    "RunResult",
    "Trainer",
    "Trajectory",
    "atomic_open",
    "atomic_write",
    "check_in",
    "check_shapes",
    "check_int",
    "check_positive",
    "check_range",
    "default_bound",
    "default_cache_dir",
    "default_device",
    "dopri5",
    "fingerprint",
    "fit",
    "describe_device",
    "git_state",
    "linear_layer",
    "make_generator",
    "numpy_rng",
    "resolve_bound",
    "resolve_device",
    "euler",
    "euler_step",
    "exponential_schedule",
    "guarded_step",
    "rk4",
    "rk4_step",
    "run",
    "sample_windows",
    "set_lr",
    "spawn_seeds",
    "uniform",
    "stable_hash",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(f"labkit.core.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'labkit.core' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from labkit.core.cache import (
        FileCache,
        atomic_open,
        atomic_write,
        default_cache_dir,
        stable_hash,
    )
    from labkit.core.config import Config, check_in, check_int, check_positive, check_range
    from labkit.core.device import default_device, describe_device, resolve_device
    from labkit.core.dopri5 import dopri5
    from labkit.core.integrate import (
        BOUND_FACTOR,
        DEFAULT_BOUND,
        Trajectory,
        default_bound,
        euler,
        euler_step,
        resolve_bound,
        rk4,
        rk4_step,
    )
    from labkit.core.provenance import git_state
    from labkit.core.rng import linear_layer, make_generator, numpy_rng, spawn_seeds, uniform
    from labkit.core.shapes import check_shapes
    from labkit.core.train import (
        CHECKPOINT_EVERY,
        CHECKPOINT_FORMAT,
        Checkpoint,
        FitResult,
        History,
        RunResult,
        Trainer,
        exponential_schedule,
        fingerprint,
        fit,
        guarded_step,
        run,
        sample_windows,
        set_lr,
    )
