"""The browser modules of labkit's widgets are one house: each widget's ES module is
``widgets/common.js`` followed by the widget's own parts (``labkit.widgets._assets``), the
anywidget and the Panel component run that same string, no top-level name is declared in
two files (so copies of the shared helpers cannot creep back), every file stays under
~600 lines, the wheel ships the folder, and the attractor's trajectory slider ends where
Python's check does. That the modules run: tests/browser/test_widget_common.py."""

from __future__ import annotations

import re
import tomllib
from collections import defaultdict
from pathlib import Path

import pytest

from labkit.errors import LabkitError
from labkit.widgets import widget_asset, widget_module
from labkit.widgets._assets import ASSET_FOLDERS, COMMON, MODULE_PARTS, part_banner

REPO = Path(__file__).resolve().parents[2]
WIDGETS = REPO / "widgets"
#: anywidget's lifecycle hooks: every widget defines its own, by design.
ENTRY_POINTS = frozenset({"render", "initialize"})
#: STYLE.md: past ~600 lines, split.
MAX_LINES = 600
#: A top-level declaration: these files indent everything nested, so it starts at column 0.
DECLARATION = re.compile(r"^(?:async\s+)?(?:function\s*\*?|class|const|let|var)\s+([A-Za-z_$][\w$]*)",
                         re.MULTILINE)
WHOLE_LINE_COMMENT = re.compile(r"^\s*//.*$", re.MULTILINE)
TEMPLATE_LITERAL = re.compile(r"`[^`]*`")  # shader sources hold `const vec3 ...` lines


def top_level_names(source: str) -> list[str]:
    """Names declared at the top level of a widget file (comments and template literals,
    such as GLSL shader sources, are not looked into)."""
    code = TEMPLATE_LITERAL.sub("``", WHOLE_LINE_COMMENT.sub("", source))
    return DECLARATION.findall(code)


def js_files() -> list[Path]:
    return sorted(WIDGETS.glob("*.js"))


@pytest.mark.parametrize("widget", sorted(MODULE_PARTS))
def test_each_module_is_common_once_then_its_parts_in_order(widget):
    module = widget_module(widget)
    names = (COMMON, *MODULE_PARTS[widget])
    assert module.startswith(part_banner(COMMON))
    positions = []
    for name in names:
        text = widget_asset(name).read_text(encoding="utf-8").rstrip()
        assert module.count(text) == 1, f"{name} appears {module.count(text)} times"
        assert module.count(part_banner(name)) == 1
        positions.append(module.index(part_banner(name)))
        assert module.index(text) == positions[-1] + len(part_banner(name)) + 1
    assert positions == sorted(positions)
    # A Blob URL resolves no import; only the last part exports, once, at the end.
    assert not re.search(r"^\s*import[\s{*\"']", module, re.MULTILINE)
    assert module.count("export default") == 1
    assert module.rstrip().splitlines()[-1].startswith("export default {")
    assert "export" not in WHOLE_LINE_COMMENT.sub("", widget_asset(COMMON).read_text())


@pytest.mark.parametrize("widget", sorted(MODULE_PARTS))
def test_the_anywidget_and_the_panel_component_run_the_assembled_module(widget):
    from labkit.widgets import AttractorViewer, CrystalViewer, SymmetryDashboard
    from labkit.widgets._attractor_panel import attractor_panel_class
    from labkit.widgets._crystal import crystal_panel_class
    from labkit.widgets._symmetry_panel import symmetry_panel_class

    anywidget_cls, panel_cls = {
        "attractor": (AttractorViewer, attractor_panel_class),
        "crystal": (CrystalViewer, crystal_panel_class),
        "symmetry": (SymmetryDashboard, symmetry_panel_class),
    }[widget]
    assert anywidget_cls._esm == widget_module(widget)
    assert panel_cls()._esm == widget_module(widget)


def test_an_unknown_widget_module_is_named_in_the_error():
    with pytest.raises(LabkitError, match="no browser module for widget 'clock'; widgets: "
                                          "\\['attractor', 'crystal', 'symmetry'\\]"):
        widget_module("clock")


def test_no_top_level_name_is_declared_in_two_files():
    where: dict[str, list[str]] = defaultdict(list)
    for path in js_files():
        for name in top_level_names(path.read_text(encoding="utf-8")):
            where[name].append(path.name)
    # The scanner sees the shared helpers where they live (it is not looking at nothing).
    for name in ("fmt", "bytesOf", "make", "multiply", "orbitMatrix", "Z_UP"):
        assert where[name] == [COMMON], (name, where[name])
    assert where["Scene"] == ["attractor_scene.js"] and "vec3" not in where
    twice = {name: files for name, files in where.items()
             if len(files) > 1 and name not in ENTRY_POINTS}
    assert twice == {}, f"declared in more than one file (move it to {COMMON}): {twice}"
    # Within one widget's module not even the entry points repeat.
    for widget, parts in MODULE_PARTS.items():
        names = [n for part in (COMMON, *parts) for n in top_level_names(
            widget_asset(part).read_text(encoding="utf-8"))]
        assert len(names) == len(set(names)), (widget, sorted(n for n in set(names)
                                                              if names.count(n) > 1))


def test_every_browser_file_belongs_to_one_module_and_stays_short():
    parts = [name for names in MODULE_PARTS.values() for name in names]
    assert len(parts) == len(set(parts)), "a part is listed under two widgets"
    assert {p.name for p in js_files()} == {COMMON, *parts}
    for path in js_files():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= MAX_LINES, f"{path.name} has {lines} lines: split it"


def test_the_wheel_ships_the_browser_folder_where_widget_asset_looks():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    wheel = config["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel["force-include"]["widgets"] == "labkit/_static/widgets"
    assert "widgets" in config["tool"]["hatch"]["build"]["targets"]["sdist"]["include"]
    assert ASSET_FOLDERS[0] == REPO / "labkit" / "_static" / "widgets"
    assert ASSET_FOLDERS[1] == WIDGETS


def test_the_trajectory_slider_ends_at_the_python_limit():
    """One constant: the n_ic slider's max is the model's ``max_ic``, which is MAX_IC, the
    bound of Python's checks."""
    from labkit.widgets import AttractorViewer
    from labkit.widgets._attractor import OUTPUTS
    from labkit.widgets._attractor_data import MAX_IC
    from labkit.widgets._attractor_panel import attractor_panel_class

    module = widget_module("attractor")
    call = re.search(r"slider\(general, \{[^}]*name: \"n_ic\"[^}]*\}", module)
    assert call is not None
    assert re.search(r"\bmax: model\.get\(\"max_ic\"\)", call.group(0)), call.group(0)
    assert OUTPUTS["max_ic"] == MAX_IC
    assert attractor_panel_class().param["max_ic"].default == MAX_IC
    v = AttractorViewer(n_ic=2, periods=1.0, samples=10, panels=False)
    assert v.max_ic == MAX_IC
    with pytest.raises(Exception, match=f"n_ic must be in \\[1, {MAX_IC}\\], got {MAX_IC + 1}"):
        v.n_ic = MAX_IC + 1
    assert v.n_ic == 2


@pytest.mark.parametrize("widget", ["attractor", "crystal", "symmetry"])
def test_every_stylesheet_starts_with_the_common_one(widget):
    from labkit.widgets import widget_asset, widget_style

    style = widget_style(widget)
    common = widget_asset("common.css").read_text().strip()
    assert style.count(".lk-widget {") == 1 and style.startswith(common)
    assert widget_asset(f"{widget}.css").read_text().strip() in style
    # the root rules live in common.css only; each widget's root carries both classes
    assert f".lk-{widget} {{" not in style
    js = widget_asset(f"{widget}.js").read_text()
    assert f'classList.add("lk-widget", "lk-{widget}")' in js
