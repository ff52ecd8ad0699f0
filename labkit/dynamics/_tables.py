"""What the dynamics tables share: rows of plain values as Markdown and as xarray."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["NamedRows", "markdown_table", "records_to_xarray"]

R = TypeVar("R")

class NamedRows(Generic[R]):
    """The name -> row lookup every table of the catalogue shares: a system's row by its
    exact name, else by its name ignoring case; ``len`` and iteration over the names."""

    rows: Mapping[str, R]
    #: What a missing name raises, and how the message names the table.
    missing_error: ClassVar[type[Exception]] = KeyError
    table_name: ClassVar[str] = "the table"

    def __getitem__(self, name: str) -> R:
        if name in self.rows:
            return self.rows[name]
        by_lower = {n.lower(): n for n in self.rows}
        if isinstance(name, str) and name.lower() in by_lower:
            return self.rows[by_lower[name.lower()]]
        raise self.missing_error(f"no row {name!r} in {self.table_name} ({len(self.rows)} rows)")

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[str]:
        return iter(self.rows)


#: A column of :func:`markdown_table`: ``(key, heading, format spec)``.
Column = tuple[str, str, str]


def _cell(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value).replace("|", "\\|")
    return format(value, spec)


def markdown_table(records: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> str:
    """A Markdown table of ``records``, one line per record and one column per
    ``(key, heading, format spec)``; numbers are right-aligned, ``None`` and NaN show
    as ``-``.

    Example:
        >>> print(markdown_table([{"a": "x", "b": 0.5}, {"a": "y", "b": None}],
        ...                      [("a", "name", ""), ("b", "value", ".2f")]))
        | name | value |
        |:---|---:|
        | x | 0.50 |
        | y | - |
    """
    def numeric(key: str) -> bool:
        values = [r.get(key) for r in records]
        return any(isinstance(v, int | float) and not isinstance(v, bool) for v in values) \
            and all(v is None or (isinstance(v, int | float) and not isinstance(v, bool))
                    for v in values)

    heads = "| " + " | ".join(head for _, head, _ in columns) + " |"
    rule = "|" + "|".join("---:" if numeric(key) else ":---" for key, _, _ in columns) + "|"
    lines = [heads, rule]
    for rec in records:
        lines.append("| " + " | ".join(_cell(rec.get(key), spec) for key, _, spec in columns)
                     + " |")
    return "\n".join(lines)


def records_to_xarray(records: Sequence[Mapping[str, Any]], dim: str, index: str, *,
                      attrs: Mapping[str, Any] | None = None) -> xr.Dataset:
    """Rows of scalars as an :class:`xarray.Dataset` on one axis ``dim``, whose
    coordinate is each record's ``index`` value; every other key is a variable. In a
    numeric or boolean column ``None`` becomes NaN (and the column float)."""
    import numpy as np
    import xarray as xr

    keys = [k for k in (records[0] if records else {}) if k != index]
    data: dict[str, Any] = {}
    for key in keys:
        values = [r.get(key) for r in records]
        plain = [v for v in values if v is not None]
        if plain and all(isinstance(v, int | float) for v in plain) and len(plain) < len(values):
            values = [math.nan if v is None else float(v) for v in values]
        data[key] = (dim, np.asarray(values))
    return xr.Dataset(data, coords={dim: [r[index] for r in records]}, attrs=dict(attrs or {}))
