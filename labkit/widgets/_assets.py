"""Locating the browser-side ES modules of labkit's widgets.

In a wheel they live in ``labkit/_static/widgets``; in a source checkout (editable
install) in the top-level ``widgets/`` folder.
"""

from __future__ import annotations

from pathlib import Path

from labkit.errors import LabkitError

__all__ = ["widget_asset"]

_PACKAGE = Path(__file__).resolve().parents[1]


def widget_asset(name: str) -> Path:
    """Path of ``widgets/<name>`` (an ES module or stylesheet) for anywidget's ``_esm``/``_css``."""
    for folder in (_PACKAGE / "_static" / "widgets", _PACKAGE.parent / "widgets"):
        path = folder / name
        if path.is_file():
            return path
    raise LabkitError(f"widget asset {name!r} not found in labkit/_static/widgets or widgets/")
