"""Locating the browser side of labkit's widgets and assembling each widget's ES module.

In a wheel the files live in ``labkit/_static/widgets``; in a source checkout (editable
install) in the top-level ``widgets/`` folder.

anywidget imports a widget's ``_esm`` from a Blob URL, where a relative ``import`` cannot
resolve, so the helpers every widget shares (``widgets/common.js``) reach a widget by
concatenation instead: :func:`widget_module` returns ``common.js`` followed by the widget's
own parts (:data:`MODULE_PARTS`), in order, as one string. No build step and no Node: the
files are read at import time of the widget's class.
"""

from __future__ import annotations

from pathlib import Path

from labkit.errors import LabkitError

__all__ = ["COMMON", "COMMON_CSS", "MODULE_PARTS", "widget_asset", "widget_module", "widget_style"]

_PACKAGE = Path(__file__).resolve().parents[1]
#: Where the browser files are looked for: the wheel's copy first, then a source checkout.
ASSET_FOLDERS = (_PACKAGE / "_static" / "widgets", _PACKAGE.parent / "widgets")
#: The browser module every widget's ES module starts with (helpers shared by all widgets).
COMMON = "common.js"
#: Each widget's own ES module files, in the order they follow :data:`COMMON`; the last one
#: holds the module's ``export default``.
MODULE_PARTS: dict[str, tuple[str, ...]] = {
    "attractor": ("attractor_ring.js", "attractor_scene.js", "attractor_charts.js",
                  "attractor.js"),
    "crystal": ("crystal.js",),
    "symmetry": ("symmetry.js",),
}


def widget_asset(name: str) -> Path:
    """Path of ``widgets/<name>`` (an ES module part or a stylesheet).

    Raises:
        LabkitError: when neither the wheel's copy nor a source checkout holds it.
    """
    for folder in ASSET_FOLDERS:
        path = folder / name
        if path.is_file():
            return path
    raise LabkitError(f"widget asset {name!r} not found in labkit/_static/widgets or widgets/")


#: The stylesheet every widget's own stylesheet is prepended with.
COMMON_CSS = "common.css"


def widget_style(widget: str) -> str:
    """The stylesheet of ``widget`` (``attractor``, ``crystal``, ``symmetry``):
    :data:`COMMON_CSS`, then ``widgets/<widget>.css``.

    Raises:
        LabkitError: for a file that is missing.
    """
    return "\n".join(widget_asset(name).read_text(encoding="utf-8").rstrip() + "\n"
                     for name in (COMMON_CSS, f"{widget}.css"))


def part_banner(name: str) -> str:
    """The comment line that opens file ``name`` inside an assembled module."""
    return f"// ==== labkit widgets/{name} ===="


def widget_module(widget: str) -> str:
    """The ES module of ``widget`` (a key of :data:`MODULE_PARTS`) for anywidget's and
    Panel's ``_esm``: :data:`COMMON`, then the widget's parts in order, each opened by
    :func:`part_banner`.

    Raises:
        LabkitError: for an unknown widget, or a file that is missing.
    """
    if widget not in MODULE_PARTS:
        raise LabkitError(f"no browser module for widget {widget!r}; widgets: "
                          f"{sorted(MODULE_PARTS)}")
    texts = []
    for name in (COMMON, *MODULE_PARTS[widget]):
        text = widget_asset(name).read_text(encoding="utf-8")
        texts.append(f"{part_banner(name)}\n{text.rstrip()}\n")
    return "\n".join(texts)
