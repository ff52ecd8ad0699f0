"""Small, frozen, keyword-only configurations that validate themselves.

Subclass :class:`Config` as a frozen keyword-only dataclass and put range checks in
:meth:`Config.validate`. Field types are checked for plain annotations (``int``,
``float``, ``bool``, ``str``, ``tuple[...]``, unions with ``None``) when the object is
built, so a bad value fails where it is given, with its name in the message::

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True, kw_only=True)
    ... class Steps(Config):
    ...     n: int = 10
    ...     def validate(self) -> None:
    ...         check_positive("n", self.n)
    >>> Steps(n=3).replace(n=4).n
    4
    >>> Steps(n=0)
    Traceback (most recent call last):
    ...
    labkit.errors.ConfigError: n must be > 0, got 0
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Self

from labkit.errors import ConfigError

__all__ = ["Config", "check_in", "check_int", "check_positive", "check_range"]


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a finite number > 0 (or >= 0)."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")


def check_int(name: str, value: int, least: int = 1) -> None:
    """Raise :class:`ConfigError` unless ``value`` is an ``int`` (not a bool) >= ``least``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise ConfigError(f"{name} must be an int >= {least}, got {value!r}")


def check_range(name: str, value: float, low: float, high: float) -> None:
    """Raise :class:`ConfigError` unless ``low <= value <= high``."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(f"{name} must be in [{low}, {high}], got {value!r}")


def check_in(name: str, value: Any, choices: Iterable[Any]) -> None:
    """Raise :class:`ConfigError` unless ``value`` is one of ``choices``."""
    choices = list(choices)
    if value not in choices:
        raise ConfigError(f"{name} must be one of {choices}, got {value!r}")


def _matches(value: Any, annotation: Any) -> bool:
    """True when ``value`` fits a plain annotation; unknown annotations always match."""
    if annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation in (bool, str):
        return isinstance(value, annotation)
    if origin is tuple:
        args = typing.get_args(annotation)
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(v, args[0]) for v in value)
        return len(args) == len(value) and all(_matches(v, a) for v, a in zip(value, args, strict=True))
    return True


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    """Base of labkit's frozen configurations.

    Subclasses are declared with ``@dataclass(frozen=True, kw_only=True)``; they get
    type checks on construction, :meth:`validate` for ranges, :meth:`replace`,
    :meth:`to_dict` and :meth:`from_dict` (which rejects unknown keys by name).
    """

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            annotation = hints.get(field.name, Any)
            # A list given where a tuple is declared is frozen into a tuple.
            if typing.get_origin(annotation) is tuple and isinstance(value, list):
                value = tuple(value)
                object.__setattr__(self, field.name, value)
            if isinstance(value, int) and not isinstance(value, bool) and annotation is float:
                object.__setattr__(self, field.name, float(value))
            elif not _matches(value, annotation):
                name = getattr(annotation, "__name__", str(annotation))
                raise ConfigError(
                    f"{type(self).__name__}.{field.name} must be {name}, "
                    f"got {value!r} ({type(value).__name__})"
                )
        self.validate()

    def validate(self) -> None:
        """Check ranges and relations between fields; raise :class:`ConfigError`."""

    def replace(self, **changes: Any) -> Self:
        """A copy with some fields changed (validated again)."""
        self._check_keys(changes)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dictionary (nested configs included)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Build from a mapping; unknown keys are an error that lists the valid ones."""
        cls._check_keys(data)
        return cls(**data)

    @classmethod
    def _check_keys(cls, data: Mapping[str, Any]) -> None:
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(valid))
        if unknown:
            raise ConfigError(
                f"unknown field(s) {unknown} for {cls.__name__}; valid fields: {valid}"
            )
